package kubernetes

import (
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

// sidecarPod returns the pod template of the workload that runs Openfire.
func sidecarPod(t *testing.T, docs []doc) corev1.PodSpec {
	t.Helper()
	for _, w := range workloads(docs) {
		for _, c := range w.template.Spec.Containers {
			if strings.HasPrefix(c.Name, "openfire") {
				return w.template.Spec
			}
		}
	}
	t.Fatal("no workload runs an openfire container")
	return corev1.PodSpec{}
}

// The init container's script, run with bash on a copy of the image's
// layout under a temporary root: on an empty volume it lays out conf,
// plugins and security as the image's entrypoint would, with the
// bootstrap openfire.xml and the admin password filled in; on a volume
// that has a configuration it changes nothing.
func TestSidecarBootstrapScript(t *testing.T) {
	docs := loadManifests(t)
	spec := sidecarPod(t, docs)
	var script string
	var bootstrapXML string
	for _, c := range spec.InitContainers {
		if c.Name == "openfire-bootstrap" {
			if len(c.Command) != 3 || c.Command[0] != "/bin/bash" {
				t.Fatalf("openfire-bootstrap: command %q, want /bin/bash -ec SCRIPT", c.Command)
			}
			script = c.Command[2]
		}
	}
	for _, d := range docs {
		if cm, ok := d.obj.(*corev1.ConfigMap); ok && cm.Data["openfire.xml"] != "" {
			bootstrapXML = cm.Data["openfire.xml"]
		}
	}
	if script == "" || bootstrapXML == "" {
		t.Fatal("no openfire-bootstrap init container or no openfire.xml")
	}
	root := t.TempDir()
	for _, d := range []string{"usr/local/openfire/conf_org", "usr/local/openfire/plugins_org/admin", "usr/local/openfire/resources/security_org", "var/lib/openfire", "bootstrap"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for f, body := range map[string]string{
		"usr/local/openfire/conf_org/openfire.xml":           "<jive/>",
		"usr/local/openfire/conf_org/log4j2.xml":             "<Configuration/>",
		"usr/local/openfire/resources/security_org/keystore": "keys",
		"bootstrap/openfire.xml":                             bootstrapXML,
	} {
		if err := os.WriteFile(filepath.Join(root, f), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	local := script
	for _, p := range []string{"/usr/local/openfire", "/var/lib/openfire", "/bootstrap"} {
		local = strings.ReplaceAll(local, p, root+p)
	}
	run := func() {
		t.Helper()
		cmd := exec.Command("/bin/bash", "-ec", local)
		cmd.Env = append(os.Environ(), "ADMIN_PASSWORD=s3cret-Pass_word")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("the bootstrap script failed: %v\n%s", err, out)
		}
	}
	run()
	data := filepath.Join(root, "var/lib/openfire")
	got, err := os.ReadFile(filepath.Join(data, "conf/openfire.xml"))
	if err != nil {
		t.Fatal(err)
	}
	props := xmlProps(t, string(got))
	if props["autosetup.admin.password"] != "s3cret-Pass_word" {
		t.Errorf("autosetup.admin.password = %q, want the Secret's value", props["autosetup.admin.password"])
	}
	if props["xmpp.socket.plain.port"] != "5262" {
		t.Errorf("the copied openfire.xml is not the bootstrap one: xmpp.socket.plain.port = %q", props["xmpp.socket.plain.port"])
	}
	for _, f := range []string{"conf/log4j2.xml", "conf/security/keystore", "plugins/admin"} {
		if _, err := os.Stat(filepath.Join(data, f)); err != nil {
			t.Errorf("the image's %s was not laid out: %v", f, err)
		}
	}
	// A second start (a volume that is set up) keeps Openfire's own file.
	if err := os.WriteFile(filepath.Join(data, "conf/openfire.xml"), []byte("<jive><setup>true</setup></jive>"), 0o644); err != nil {
		t.Fatal(err)
	}
	run()
	if got, _ := os.ReadFile(filepath.Join(data, "conf/openfire.xml")); string(got) != "<jive><setup>true</setup></jive>" {
		t.Errorf("the script overwrote the configuration of a set-up Openfire: %s", got)
	}
}

// The exec probe of the Openfire container succeeds while something listens
// on its loopback port and fails once nothing does (real bash, a real
// loopback socket).
func TestSidecarOpenfireProbeCommand(t *testing.T) {
	spec := sidecarPod(t, loadManifests(t))
	var cmdline []string
	for _, c := range spec.Containers {
		if strings.HasPrefix(c.Name, "openfire") && c.ReadinessProbe != nil && c.ReadinessProbe.Exec != nil {
			cmdline = c.ReadinessProbe.Exec.Command
		}
	}
	if len(cmdline) != 3 {
		t.Fatalf("readiness exec command %q, want [/bin/bash -c SCRIPT]", cmdline)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	script := strings.ReplaceAll(cmdline[2], "/127.0.0.1/5262", "/127.0.0.1/"+p)
	if script == cmdline[2] {
		t.Fatalf("the probe %q does not name 127.0.0.1/5262", cmdline[2])
	}
	probe := func() error { return exec.Command(cmdline[0], cmdline[1], script).Run() }
	if err := probe(); err != nil {
		t.Errorf("the probe fails while the port listens: %v", err)
	}
	ln.Close()
	if err := probe(); err == nil {
		t.Error("the probe passes with nothing listening on the port")
	}
}
