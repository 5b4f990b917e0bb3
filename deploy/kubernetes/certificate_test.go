package kubernetes

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// certificate is cert-manager's cert-manager.io/v1 Certificate, reduced to
// the fields of its CertificateSpec that the manifests use (names and JSON
// tags as in cert-manager's pkg/apis/certmanager/v1). Strict decoding
// rejects any other field, a misspelt one included.
type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		SecretName  string           `json:"secretName"`
		CommonName  string           `json:"commonName,omitempty"`
		DNSNames    []string         `json:"dnsNames,omitempty"`
		Duration    *metav1.Duration `json:"duration,omitempty"`
		RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`
		Usages      []string         `json:"usages,omitempty"`
		PrivateKey  *struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Size           int    `json:"size,omitempty"`
			Encoding       string `json:"encoding,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind,omitempty"`
			Group string `json:"group,omitempty"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// Several replicas, one certificate: every Guard that terminates TLS reads
// its files from a Secret that a cert-manager Certificate keeps, mounted
// where its config.hcl looks, and the Certificate is one Guard can use.
func TestCertificateReachesEveryGuard(t *testing.T) {
	docs := loadManifests(t)
	certs := map[string]*certificate{} // by secretName
	for _, d := range docs {
		c, ok := d.obj.(*certificate)
		if !ok {
			continue
		}
		certs[c.Spec.SecretName] = c
		where := d.String()
		if c.Spec.SecretName == "" || c.Spec.IssuerRef.Name == "" || len(c.Spec.DNSNames) == 0 {
			t.Errorf("%s: want secretName, issuerRef.name and dnsNames", where)
		}
		if c.Spec.Duration != nil && c.Spec.RenewBefore != nil && c.Spec.RenewBefore.Duration >= c.Spec.Duration.Duration {
			t.Errorf("%s: renewBefore %v is not below duration %v", where, c.Spec.RenewBefore.Duration, c.Spec.Duration.Duration)
		}
		if pk := c.Spec.PrivateKey; pk != nil && pk.Algorithm == "Ed25519" {
			t.Errorf("%s: Ed25519 keys are not served by most XMPP clients' TLS stacks", where)
		}
	}
	if len(certs) == 0 {
		t.Fatal("no cert-manager Certificate in the manifests")
	}
	configMaps := map[string]string{}
	for _, d := range docs {
		if cm, ok := d.obj.(*corev1.ConfigMap); ok {
			configMaps[cm.Name] = cm.Data["config.hcl"]
		}
	}
	terminating := 0
	for _, w := range workloads(docs) {
		spec := w.template.Spec
		for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
			if !isGuard(c) {
				continue
			}
			var src string
			for _, v := range spec.Volumes {
				for _, m := range c.VolumeMounts {
					if m.Name == v.Name && m.MountPath == "/etc/guard" && v.ConfigMap != nil {
						src = configMaps[v.ConfigMap.Name]
					}
				}
			}
			if !strings.Contains(src, tlsDir) {
				continue // no TLS from files in this Guard
			}
			terminating++
			where := w.doc.String() + ": " + w.name + "/" + c.Name
			for _, f := range []string{"tls.crt", "tls.key"} {
				if !strings.Contains(src, `"`+tlsDir+f+`"`) {
					t.Errorf("%s: config.hcl does not read %s%s, the key cert-manager writes", where, tlsDir, f)
				}
			}
			var secret *corev1.SecretVolumeSource
			for _, m := range c.VolumeMounts {
				if m.MountPath != strings.TrimSuffix(tlsDir, "/") {
					continue
				}
				for _, v := range spec.Volumes {
					if v.Name == m.Name {
						secret = v.Secret
					}
				}
			}
			switch {
			case secret == nil:
				t.Errorf("%s: no Secret volume mounted at %s", where, tlsDir)
			case certs[secret.SecretName] == nil:
				t.Errorf("%s: Secret %q is not the secretName of a Certificate", where, secret.SecretName)
			case secret.DefaultMode != nil && *secret.DefaultMode&0o004 == 0:
				t.Errorf("%s: defaultMode %o: Guard (user 65532, not the files' owner) cannot read the key", where, *secret.DefaultMode)
			}
		}
	}
	if terminating < 2 {
		t.Errorf("%d Guard workloads read the certificate Secret, want both (edge and sidecar)", terminating)
	}
}
