package deploy

import (
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// manifest is kubernetes.yaml decoded into the API types, by kind and name.
type manifest struct {
	secrets     map[string]*corev1.Secret
	configMaps  map[string]*corev1.ConfigMap
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
}

// loadManifest decodes file with decodeManifest.
func loadManifest(t *testing.T, file string) manifest {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeManifest(b)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return m
}

// decodeManifest decodes every document strictly: an unknown or misplaced field, a duplicate
// key or a kind this test does not know is an error, where kubectl apply might drop the field.
func decodeManifest(b []byte) (manifest, error) {
	m := manifest{secrets: map[string]*corev1.Secret{}, configMaps: map[string]*corev1.ConfigMap{},
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{}}
	for i, doc := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(b), -1) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			return m, fmt.Errorf("document %d: %w", i+1, err)
		}
		if tm.Kind == "" {
			continue // comments only
		}
		var obj metav1.Object
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 Secret":
			obj = &corev1.Secret{}
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "apps/v1 Deployment":
			obj = &appsv1.Deployment{}
		case "v1 Service":
			obj = &corev1.Service{}
		default:
			return m, fmt.Errorf("document %d: %s %s is not a kind this test checks; add it", i+1, tm.APIVersion, tm.Kind)
		}
		// As the API server decodes: YAML to JSON, then case-sensitive JSON that refuses unknown
		// and duplicate fields (encoding/json would accept "stringdata" for stringData).
		j, err := yaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			return m, fmt.Errorf("document %d (%s): %w", i+1, tm.Kind, err)
		}
		strictErrs, err := kjson.UnmarshalStrict(j, obj)
		if err = errors.Join(append(strictErrs, err)...); err != nil {
			return m, fmt.Errorf("document %d (%s): %w", i+1, tm.Kind, err)
		}
		name := obj.GetName()
		if name == "" {
			return m, fmt.Errorf("document %d (%s) has no metadata.name", i+1, tm.Kind)
		}
		switch o := obj.(type) {
		case *corev1.Secret:
			m.secrets[name] = o
		case *corev1.ConfigMap:
			m.configMaps[name] = o
		case *appsv1.Deployment:
			m.deployments[name] = o
		case *corev1.Service:
			m.services[name] = o
		}
	}
	return m, nil
}

func TestDecodeManifestIsStrict(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, doc string }{
		{"misplaced field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      fsGroup: 65532\n"},
		{"misspelt field", "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringdata: {a: b}\n"},
		{"duplicate key", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {A: b, A: c}\n"},
		{"unknown kind", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n"},
		{"no name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"},
	}
	for _, tt := range tests {
		if _, err := decodeManifest([]byte("# comment\n---\n" + tt.doc)); err == nil {
			t.Errorf("%s: decoded without error", tt.name)
		}
	}
}

func TestKubernetesExampleDecodesStrictly(t *testing.T) {
	t.Parallel()
	m := loadManifest(t, "kubernetes.yaml")
	if len(m.deployments) != 1 || len(m.secrets) != 1 || len(m.configMaps) != 1 {
		t.Fatalf("want one Deployment, Secret and ConfigMap; got %d, %d, %d", len(m.deployments), len(m.secrets), len(m.configMaps))
	}
	for _, d := range m.deployments {
		pod := d.Spec.Template.Spec
		for _, c := range pod.Containers {
			for _, from := range c.EnvFrom {
				if ref := from.ConfigMapRef; ref != nil && m.configMaps[ref.Name] == nil {
					t.Errorf("container %s reads ConfigMap %s, which the file does not define", c.Name, ref.Name)
				}
			}
		}
		for _, v := range pod.Volumes {
			if v.Secret != nil && m.secrets[v.Secret.SecretName] == nil {
				t.Errorf("volume %s mounts Secret %s, which the file does not define", v.Name, v.Secret.SecretName)
			}
		}
	}
}

// TestKubernetesExampleCanReadItsSecrets checks, for every NAME_FILE variable of every
// container, that the path is a file of a mounted Secret volume and that the container's user
// may read it.
//
// Secret volume files belong to root; with fsGroup set, the kubelet gives their group to fsGroup
// and adds fsGroup to every container's groups (Kubernetes pkg/volume/volume_linux.go,
// SetVolumeOwnership; https://kubernetes.io/docs/tasks/configure-pod-container/security-context/).
// The kubelet also ORs 0440 into the files' mode then; this test does not count on that, so the
// example's mode says what the bot needs. Root is not special: the container drops every
// capability, CAP_DAC_OVERRIDE included.
func TestKubernetesExampleCanReadItsSecrets(t *testing.T) {
	t.Parallel()
	m := loadManifest(t, "kubernetes.yaml")
	for _, d := range m.deployments {
		pod := d.Spec.Template.Spec
		for _, c := range pod.Containers {
			uid, groups, err := identity(pod.SecurityContext, c.SecurityContext)
			if err != nil {
				t.Errorf("deployment %s, container %s: %v", d.Name, c.Name, err)
				continue
			}
			files := 0
			for _, e := range c.Env {
				if !strings.HasSuffix(e.Name, "_FILE") {
					continue
				}
				files++
				owner, group, mode, err := secretFile(m, pod, c, e.Value)
				if err != nil {
					t.Errorf("container %s: %s=%s: %v", c.Name, e.Name, e.Value, err)
					continue
				}
				if !canRead(uid, groups, owner, group, mode) {
					t.Errorf("container %s: %s=%s is mode %#o owned by %d:%d; user %d (groups %v) cannot read it: set fsGroup and a mode with the group read bit",
						c.Name, e.Name, e.Value, mode, owner, group, uid, groups)
				}
			}
			if files == 0 {
				t.Errorf("container %s reads no secret through a NAME_FILE variable", c.Name)
			}
		}
	}
}

// identity is the container's user and groups: runAsUser and runAsGroup (the container's over
// the pod's), supplementalGroups and fsGroup. The user must be explicit: the test cannot see the
// image's.
func identity(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) (uid int64, groups []int64, err error) {
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	if c == nil {
		c = &corev1.SecurityContext{}
	}
	u, g := pod.RunAsUser, pod.RunAsGroup
	if c.RunAsUser != nil {
		u = c.RunAsUser
	}
	if c.RunAsGroup != nil {
		g = c.RunAsGroup
	}
	if u == nil {
		return 0, nil, fmt.Errorf("no runAsUser: set it so the file permissions can be checked")
	}
	if g != nil {
		groups = append(groups, *g)
	}
	groups = append(groups, pod.SupplementalGroups...)
	if pod.FSGroup != nil {
		groups = append(groups, *pod.FSGroup)
	}
	return *u, groups, nil
}

// secretFile finds the Secret key that file is in the container's mounts, and the owner, group
// and mode the kubelet gives it.
func secretFile(m manifest, pod corev1.PodSpec, c corev1.Container, file string) (owner, group int64, mode int32, err error) {
	for _, vm := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/")
		if !ok {
			continue
		}
		i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		if i < 0 || pod.Volumes[i].Secret == nil {
			return 0, 0, 0, fmt.Errorf("%s is not a Secret volume", vm.MountPath)
		}
		src := pod.Volumes[i].Secret
		mode = corev1.SecretVolumeSourceDefaultMode
		if src.DefaultMode != nil {
			mode = *src.DefaultMode
		}
		key := ""
		if len(src.Items) == 0 {
			key = rel
		}
		for _, it := range src.Items {
			if path.Clean(it.Path) == rel {
				key = it.Key
				if it.Mode != nil {
					mode = *it.Mode
				}
			}
		}
		secret := m.secrets[src.SecretName]
		if secret == nil {
			return 0, 0, 0, fmt.Errorf("Secret %s is not in the file", src.SecretName)
		}
		_, inData := secret.Data[key]
		_, inStringData := secret.StringData[key]
		if key == "" || (!inData && !inStringData) {
			return 0, 0, 0, fmt.Errorf("Secret %s has no key for %s", src.SecretName, rel)
		}
		if pod.SecurityContext != nil && pod.SecurityContext.FSGroup != nil {
			group = *pod.SecurityContext.FSGroup
		}
		return 0, group, mode, nil
	}
	return 0, 0, 0, fmt.Errorf("no volume is mounted there")
}

// canRead applies the POSIX permission check: the owner bits if uid owns the file, else the
// group bits if one of groups is the file's group, else the other bits.
func canRead(uid int64, groups []int64, owner, group int64, mode int32) bool {
	switch {
	case uid == owner:
		return mode&0o400 != 0
	case slices.Contains(groups, group):
		return mode&0o040 != 0
	default:
		return mode&0o004 != 0
	}
}

func TestCanRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		uid          int64
		groups       []int64
		owner, group int64
		mode         int32
		want         bool
	}{
		{"owner read", 65532, nil, 65532, 0, 0o400, true},
		{"owner bits win over group bits", 65532, []int64{65532}, 65532, 65532, 0o040, false},
		{"root-owned 0400, no fsGroup", 65532, []int64{65532}, 0, 0, 0o400, false},
		{"root-owned 0400, fsGroup", 65532, []int64{65532}, 0, 65532, 0o400, false},
		{"root-owned 0440, fsGroup", 65532, []int64{65532}, 0, 65532, 0o440, true},
		{"root-owned 0440, other group", 65532, []int64{65532}, 0, 0, 0o440, false},
		{"world readable", 65532, nil, 0, 0, 0o644, true},
	}
	for _, tt := range tests {
		if got := canRead(tt.uid, tt.groups, tt.owner, tt.group, tt.mode); got != tt.want {
			t.Errorf("%s: canRead = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSecretFileRefusesPathsOutsideTheSecret(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("kubernetes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.deployments {
		pod := d.Spec.Template.Spec
		c := pod.Containers[0]
		for _, file := range []string{"/etc/metabase-bot/database_url", "/etc/other/database-url", "/etc/metabase-bot"} {
			if _, _, _, err := secretFile(m, pod, c, file); err == nil {
				t.Errorf("secretFile(%s) found a file", file)
			}
		}
		if _, _, _, err := secretFile(m, pod, c, "/etc/metabase-bot/database-url"); err != nil {
			t.Errorf("secretFile(/etc/metabase-bot/database-url): %v", err)
		}
	}
}

// The README's walkthrough creates the Secret with kubectl: its keys must be the ones the
// example mounts.
func TestReadmeSecretMatchesExample(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var created []string
	for _, m := range regexp.MustCompile(`--from-file=([a-z0-9-]+)=`).FindAllSubmatch(readme, -1) {
		created = append(created, string(m[1]))
	}
	m := loadManifest(t, "kubernetes.yaml")
	var want []string
	for _, s := range m.secrets {
		for k := range s.StringData {
			want = append(want, k)
		}
		for k := range s.Data {
			want = append(want, k)
		}
	}
	slices.Sort(created)
	slices.Sort(want)
	if !slices.Equal(created, want) {
		t.Errorf("README's kubectl create secret makes keys %q; kubernetes.yaml's Secret has %q", created, want)
	}
}
