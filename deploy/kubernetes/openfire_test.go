package kubernetes

import (
	"encoding/xml"
	"fmt"
	"net"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// xmlProps flattens openfire.xml into Openfire's property names: the
// element path under <jive>, joined by dots (adminConsole.port,
// xmpp.socket.plain.port, ...), as JiveGlobals names XML properties.
func xmlProps(t *testing.T, src string) map[string]string {
	t.Helper()
	props := map[string]string{}
	dec := xml.NewDecoder(strings.NewReader(src))
	var path []string
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("openfire.xml: %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			path = append(path, e.Name.Local)
			text.Reset()
		case xml.CharData:
			text.Write(e)
		case xml.EndElement:
			if v := strings.TrimSpace(text.String()); v != "" && len(path) > 1 {
				props[strings.Join(path[1:], ".")] = v
			}
			text.Reset()
			path = path[:len(path)-1]
		}
	}
	return props
}

// The sidecar's Openfire is configured for Guard (docs/openfire.md), and
// its probes ask what it actually serves: its c2s port is where Guard
// forwards, its console is off Guard's admin port, its own TLS is off, and
// with every listener on loopback no probe comes from the kubelet over the
// pod IP (the pod would never become Ready).
func TestSidecarOpenfireSettings(t *testing.T) {
	docs := loadManifests(t)
	cfgs := guardConfigs(t, docs)
	var props map[string]string
	for _, d := range docs {
		if cm, ok := d.obj.(*corev1.ConfigMap); ok && cm.Data["openfire.xml"] != "" {
			props = xmlProps(t, cm.Data["openfire.xml"])
		}
	}
	if props == nil {
		t.Fatal("no ConfigMap carries an openfire.xml")
	}
	cfg := cfgs["guard-sidecar"]
	if cfg == nil {
		t.Fatal("no ConfigMap guard-sidecar with a config.hcl")
	}
	c2s := props["xmpp.socket.plain.port"]
	if want := "127.0.0.1:" + c2s; cfg.Backends[0].Address != want {
		t.Errorf("Guard forwards to %s, Openfire's c2s is %s", cfg.Backends[0].Address, want)
	}
	for key, want := range map[string]string{
		"xmpp.multiplex.socket.active":     "false", // 5262 is also its default
		"xmpp.client.tls.policy":           "disabled",
		"autosetup.xmpp.socket.ssl.active": "false", // autosetup turns Direct TLS on otherwise
		"autosetup.run":                    "true",
		"network.interface":                "127.0.0.1",
		"connectionProvider.className":     "org.jivesoftware.database.EmbeddedConnectionProvider",
		"autosetup.database.mode":          "embedded",
	} {
		if props[key] != want {
			t.Errorf("openfire.xml: %s = %q, want %q", key, props[key], want)
		}
	}
	_, adminPort, _ := net.SplitHostPort(cfg.Admin.Address)
	if props["adminConsole.port"] == adminPort || props["adminConsole.securePort"] == adminPort {
		t.Errorf("Openfire's admin console (%s, %s) takes Guard's admin port %s", props["adminConsole.port"], props["adminConsole.securePort"], adminPort)
	}

	for _, w := range workloads(docs) {
		for _, c := range w.template.Spec.Containers {
			if c.Image == "" || isGuard(c) || !strings.HasPrefix(c.Name, "openfire") {
				continue
			}
			for name, p := range map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
				where := fmt.Sprintf("%v: %s/%s %s", w.doc, w.name, c.Name, name)
				switch {
				case p == nil:
					t.Errorf("%s: missing", where)
				case p.TCPSocket != nil || p.HTTPGet != nil || p.GRPC != nil:
					t.Errorf("%s: probes the pod IP, where Openfire (network.interface 127.0.0.1) listens on nothing", where)
				case p.Exec != nil:
					if cmd := strings.Join(p.Exec.Command, " "); !strings.Contains(cmd, "/dev/tcp/127.0.0.1/"+c2s) {
						t.Errorf("%s: exec %q does not check Openfire's c2s port 127.0.0.1:%s", where, cmd, c2s)
					}
				}
			}
		}
	}
}
