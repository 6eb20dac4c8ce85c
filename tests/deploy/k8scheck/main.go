// k8scheck RENDERED.yaml KEDA_DIR - check the objects `helm template`
// rendered from deploy/k8s/kascade the way the API server would, without
// a cluster, and print what tests/deploy/test_k8s.sh checks further.
//
// Each object is decoded strictly (an unknown field, a field given twice
// or a wrong type is an error) into its typed struct: k8s.io/api for the
// built-in kinds, the prometheus-operator's monitoring/v1 for the
// ServiceMonitor. A KEDA ScaledObject is validated against the openAPIV3
// schema of KEDA's own CRD (KEDA_DIR/config/crd/bases, from the
// github.com/kedacore/keda/v2 module) with kube-openapi's validator, the
// one the API server uses for custom resources, unknown fields refused;
// its trigger metadata against the fields KEDA's scalers parse (the
// `keda:"name=..."` tags of KEDA_DIR/pkg/scalers: names, enums, the
// required ones); its scalingModifiers formula is compiled with
// expr-lang, as KEDA's admission webhook does. Names and labels follow
// the API server's rules (DNS-1123, qualified names).
//
// Exit 1 with one line per problem on stderr. On success it prints one
// fact a line, tab-separated:
//
//	object    KIND NAME
//	cmd       KIND/NAME CONTAINER ARG...
//	probe     KIND/NAME CONTAINER KIND PATH PORT
//	envfrom   KIND/NAME SECRET
//	config    CONFIGMAP KEY          (the data file, written to RENDERED.KEY)
//	grace     KIND/NAME SECONDS
//	scaled    NAME TARGET MIN MAX IDLE
//	trigger   NAME TYPE KEY VALUE    (one line per metadata key)
//	modifier  NAME FORMULA TARGET
//	promql    NAME QUERY
//	pdb       NAME
//	monitor   NAME PORT PATH
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/expr-lang/expr"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
	"sigs.k8s.io/yaml"
)

var problems []string

func bad(format string, args ...any) {
	problems = append(problems, fmt.Sprintf(format, args...))
}

func fact(fields ...string) {
	fmt.Println(strings.Join(fields, "\t"))
}

// checker holds what the objects say about each other.
type checker struct {
	rendered    string
	deployments map[string]map[string]string // name -> pod template labels
	scaledSpec  *spec.Schema
	scalerKeys  map[string]map[string]scalerKey // trigger type -> key
	scaled      []map[string]any
	pdbs        []policyv1.PodDisruptionBudget
	ports       map[string]bool // named container ports
	targets     [][2]string     // Service, named targetPort
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: k8scheck RENDERED.yaml KEDA_DIR")
		os.Exit(2)
	}
	c := &checker{rendered: os.Args[1],
		deployments: map[string]map[string]string{},
		ports:       map[string]bool{}}
	var err error
	if c.scaledSpec, err = loadCRDSchema(filepath.Join(os.Args[2],
		"config/crd/bases/keda.sh_scaledobjects.yaml")); err != nil {
		fail(err)
	}
	if c.scalerKeys, err = loadScalerKeys(filepath.Join(os.Args[2],
		"pkg/scalers")); err != nil {
		fail(err)
	}
	data, err := os.ReadFile(c.rendered)
	if err != nil {
		fail(err)
	}
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	n := 0
	for {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			fail(err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		n++
		c.object(doc)
	}
	if n == 0 {
		bad("no objects rendered")
	}
	c.crossChecks()
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "k8scheck:", p)
		}
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "k8scheck:", err)
	os.Exit(1)
}

func stripComments(doc []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return []byte(strings.Join(out, "\n"))
}

func (c *checker) object(doc []byte) {
	var head struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		bad("not YAML: %v", err)
		return
	}
	id := head.Kind + "/" + head.Metadata.Name
	c.meta(id, head.Kind, &head.Metadata)
	fact("object", head.Kind, head.Metadata.Name)
	switch head.APIVersion + " " + head.Kind {
	case "v1 ConfigMap":
		var o corev1.ConfigMap
		if strictly(id, doc, &o) {
			for k, v := range o.Data {
				if err := os.WriteFile(c.rendered+"."+k, []byte(v), 0o644); err != nil {
					fail(err)
				}
				fact("config", o.Name, k)
			}
		}
	case "v1 Secret":
		var o corev1.Secret
		strictly(id, doc, &o)
	case "v1 Service":
		var o corev1.Service
		if strictly(id, doc, &o) {
			for _, p := range o.Spec.Ports {
				if p.TargetPort.StrVal != "" {
					c.targets = append(c.targets, [2]string{id, p.TargetPort.StrVal})
				}
			}
		}
	case "apps/v1 Deployment":
		var o appsv1.Deployment
		if strictly(id, doc, &o) {
			c.deployment(id, &o)
		}
	case "batch/v1 Job":
		var o batchv1.Job
		if strictly(id, doc, &o) {
			c.podSpec(id, &o.Spec.Template.Spec)
		}
	case "policy/v1 PodDisruptionBudget":
		var o policyv1.PodDisruptionBudget
		if strictly(id, doc, &o) {
			if o.Spec.Selector == nil || (o.Spec.MaxUnavailable == nil) == (o.Spec.MinAvailable == nil) {
				bad("%s: needs a selector and exactly one of maxUnavailable, minAvailable", id)
			}
			c.pdbs = append(c.pdbs, o)
			fact("pdb", o.Name)
		}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		var o monitoringv1.ServiceMonitor
		if strictly(id, doc, &o) {
			for _, e := range o.Spec.Endpoints {
				fact("monitor", o.Name, e.Port, e.Path)
			}
		}
	case "keda.sh/v1alpha1 ScaledObject":
		c.scaledObject(id, doc)
	default:
		bad("%s: %s %s is not a kind this chart should render", id, head.APIVersion, head.Kind)
	}
}

// strictly decodes like `kubectl apply --validate=strict`.
func strictly(id string, doc []byte, into any) bool {
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		bad("%s: %v", id, err)
		return false
	}
	return true
}

func (c *checker) meta(id, kind string, m *metav1.ObjectMeta) {
	if m.Name == "" {
		bad("%s: metadata.name is empty", id)
	}
	check := validation.IsDNS1123Subdomain
	if kind == "Service" || kind == "Deployment" {
		check = validation.IsDNS1123Label // a Service and a Deployment's pods' hostnames
	}
	for _, e := range check(m.Name) {
		bad("%s: metadata.name: %s", id, e)
	}
	c.labels(id+" metadata.labels", m.Labels)
	for k := range m.Annotations {
		for _, e := range validation.IsQualifiedName(k) {
			bad("%s: annotation %q: %s", id, k, e)
		}
	}
}

func (c *checker) labels(where string, l map[string]string) {
	for k, v := range l {
		for _, e := range validation.IsQualifiedName(k) {
			bad("%s: label key %q: %s", where, k, e)
		}
		for _, e := range validation.IsValidLabelValue(v) {
			bad("%s: label %s value %q: %s", where, k, v, e)
		}
	}
}

func (c *checker) deployment(id string, o *appsv1.Deployment) {
	sel, err := metav1.LabelSelectorAsSelector(o.Spec.Selector)
	if o.Spec.Selector == nil || err != nil || sel.Empty() {
		bad("%s: spec.selector is missing or invalid (%v)", id, err)
	} else if !sel.Matches(labels.Set(o.Spec.Template.Labels)) {
		bad("%s: spec.selector does not match the pod template's labels", id)
	}
	c.labels(id+" template labels", o.Spec.Template.Labels)
	c.deployments[o.Name] = o.Spec.Template.Labels
	c.podSpec(id, &o.Spec.Template.Spec)
}

func (c *checker) podSpec(id string, p *corev1.PodSpec) {
	if len(p.Containers) == 0 {
		bad("%s: no containers", id)
	}
	if p.TerminationGracePeriodSeconds != nil {
		fact("grace", id, fmt.Sprint(*p.TerminationGracePeriodSeconds))
	}
	vols := map[string]bool{}
	for _, v := range p.Volumes {
		vols[v.Name] = true
	}
	for _, ct := range p.Containers {
		where := id + " container " + ct.Name
		if ct.Name == "" || ct.Image == "" || len(ct.Command) == 0 {
			bad("%s: needs a name, an image and a command", where)
		}
		fact(append([]string{"cmd", id, ct.Name}, append(ct.Command, ct.Args...)...)...)
		ports := map[string]int32{}
		for _, p := range ct.Ports {
			ports[p.Name] = p.ContainerPort
			c.ports[p.Name] = true
		}
		for kind, pr := range map[string]*corev1.Probe{"startup": ct.StartupProbe,
			"readiness": ct.ReadinessProbe, "liveness": ct.LivenessProbe} {
			if pr == nil || pr.HTTPGet == nil {
				continue
			}
			port := pr.HTTPGet.Port.String()
			if pr.HTTPGet.Port.StrVal != "" {
				if _, ok := ports[port]; !ok {
					bad("%s: %s probe names port %q, which the container does not declare", where, kind, port)
				}
			}
			fact("probe", id, ct.Name, kind, pr.HTTPGet.Path, port)
		}
		for _, m := range ct.VolumeMounts {
			if !vols[m.Name] {
				bad("%s: mounts volume %q, which the pod does not declare", where, m.Name)
			}
		}
		for _, e := range ct.EnvFrom {
			if e.SecretRef != nil {
				fact("envfrom", id, e.SecretRef.Name)
			}
		}
		if ct.Resources.Requests.Memory().IsZero() || ct.Resources.Requests.Cpu().IsZero() {
			bad("%s: needs cpu and memory requests", where)
		}
		if l := ct.Resources.Limits.Memory(); !l.IsZero() && l.Cmp(*ct.Resources.Requests.Memory()) < 0 {
			bad("%s: memory limit below its request", where)
		}
	}
}

func (c *checker) needPort(id, name string) {
	if !c.ports[name] {
		bad("%s: targetPort %q is no container's port", id, name)
	}
}

// --- KEDA ---------------------------------------------------------------

func loadCRDSchema(path string) (*spec.Schema, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Name   string `json:"name"`
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	for _, v := range crd.Spec.Versions {
		if v.Name == "v1alpha1" {
			closeObjects(v.Schema.OpenAPIV3Schema)
			js, _ := yaml.Marshal(v.Schema.OpenAPIV3Schema)
			var s spec.Schema
			if err := yaml.Unmarshal(js, &s); err != nil {
				return nil, fmt.Errorf("%s: %v", path, err)
			}
			return &s, nil
		}
	}
	return nil, fmt.Errorf("%s: no v1alpha1 schema", path)
}

// closeObjects refuses unknown fields where the API server prunes them
// (an object with properties and no x-kubernetes-preserve-unknown-fields),
// which `kubectl apply` reports as an error under strict validation.
func closeObjects(n any) {
	switch v := n.(type) {
	case map[string]any:
		if _, ok := v["properties"]; ok {
			if _, ok := v["additionalProperties"]; !ok && v["x-kubernetes-preserve-unknown-fields"] != true {
				v["additionalProperties"] = false
			}
		}
		for _, child := range v {
			closeObjects(child)
		}
	case []any:
		for _, child := range v {
			closeObjects(child)
		}
	}
}

type scalerKey struct {
	required bool
	enum     []string
}

var kedaTag = regexp.MustCompile(`keda:"([^"]*)"`)

// loadScalerKeys reads the trigger metadata fields of the scalers the
// chart uses from their `keda:"name=...,order=...,optional|default=...,
// enum=a;b"` struct tags.
func loadScalerKeys(dir string) (map[string]map[string]scalerKey, error) {
	out := map[string]map[string]scalerKey{}
	for trigger, file := range map[string]string{"kafka": "kafka_scaler.go",
		"prometheus": "prometheus_scaler.go"} {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return nil, err
		}
		keys := map[string]scalerKey{}
		for _, m := range kedaTag.FindAllStringSubmatch(string(data), -1) {
			k := scalerKey{required: true}
			name, meta := "", false
			for _, part := range strings.Split(m[1], ",") {
				kv := strings.SplitN(strings.TrimSpace(part), "=", 2)
				switch kv[0] {
				case "name":
					name = kv[1]
				case "order":
					meta = strings.Contains(kv[1], "triggerMetadata")
				case "optional", "default":
					k.required = false
				case "enum":
					k.enum = strings.Split(kv[1], ";")
				}
			}
			if name != "" && meta {
				keys[name] = k
			}
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("%s: no keda tags found (KEDA's scaler source changed?)", file)
		}
		out[trigger] = keys
	}
	return out, nil
}

func (c *checker) scaledObject(id string, doc []byte) {
	var obj map[string]any
	if err := yaml.Unmarshal(doc, &obj); err != nil {
		bad("%s: %v", id, err)
		return
	}
	res := validate.NewSchemaValidator(c.scaledSpec, nil, "", strfmt.Default).Validate(obj)
	for _, e := range res.Errors {
		bad("%s: against KEDA's ScaledObject CRD: %v", id, e)
	}
	var meta struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &meta); err == nil {
		var strict struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		js, _ := yaml.Marshal(map[string]any{"metadata": obj["metadata"]})
		strictly(id+" metadata", js, &strict)
	}
	c.scaled = append(c.scaled, obj)
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func (c *checker) crossChecks() {
	for _, obj := range c.scaled {
		md, _ := obj["metadata"].(map[string]any)
		sp, _ := obj["spec"].(map[string]any)
		if md == nil || sp == nil {
			continue
		}
		name := str(md["name"])
		id := "ScaledObject/" + name
		ref, _ := sp["scaleTargetRef"].(map[string]any)
		target := str(ref["name"])
		if _, ok := c.deployments[target]; !ok || str(ref["kind"]) != "Deployment" {
			bad("%s: scaleTargetRef %s/%s is not a rendered Deployment", id, str(ref["kind"]), target)
		}
		idle := "-"
		if v, ok := sp["idleReplicaCount"]; ok {
			idle = str(v)
		}
		fact("scaled", name, target, str(sp["minReplicaCount"]), str(sp["maxReplicaCount"]), idle)
		triggers, _ := sp["triggers"].([]any)
		names := map[string]any{}
		for _, t := range triggers {
			tm, _ := t.(map[string]any)
			c.trigger(id, name, tm)
			if n := str(tm["name"]); n != "" {
				names[n] = 1.0
			}
		}
		adv, _ := sp["advanced"].(map[string]any)
		if mod, ok := adv["scalingModifiers"].(map[string]any); ok {
			formula := str(mod["formula"])
			if len(names) != len(triggers) {
				bad("%s: scalingModifiers needs every trigger named", id)
			}
			if _, err := expr.Compile(formula, expr.Env(names), expr.AsFloat64()); err != nil {
				bad("%s: scalingModifiers.formula %q does not compile: %v", id, formula, err)
			} else if out, err := expr.Eval(formula, names); err != nil {
				bad("%s: scalingModifiers.formula %q: %v", id, formula, err)
			} else if _, ok := out.(float64); !ok {
				bad("%s: scalingModifiers.formula gives %T, not a number", id, out)
			}
			fact("modifier", name, formula, str(mod["target"]))
		}
	}
	for _, t := range c.targets {
		c.needPort(t[0], t[1])
	}
	// Every PDB covers exactly one Deployment's pods.
	for _, p := range c.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			bad("PodDisruptionBudget/%s: %v", p.Name, err)
			continue
		}
		var hits []string
		for d, l := range c.deployments {
			if sel.Matches(labels.Set(l)) {
				hits = append(hits, d)
			}
		}
		sort.Strings(hits)
		if len(hits) != 1 {
			bad("PodDisruptionBudget/%s: selects the pods of %d Deployments (%v), not one", p.Name, len(hits), hits)
		}
	}
}

func (c *checker) trigger(id, name string, t map[string]any) {
	typ := str(t["type"])
	keys, ok := c.scalerKeys[typ]
	if !ok {
		bad("%s: trigger type %q is not one this check knows", id, typ)
		return
	}
	md, _ := t["metadata"].(map[string]any)
	for k, v := range md {
		key, ok := keys[k]
		if !ok {
			bad("%s: %s trigger: KEDA's %s scaler reads no metadata %q", id, typ, typ, k)
			continue
		}
		if len(key.enum) > 0 && !contains(key.enum, str(v)) {
			bad("%s: %s trigger: %s=%q is not one of %v", id, typ, k, str(v), key.enum)
		}
		fact("trigger", name, typ, k, str(v))
		if typ == "prometheus" && k == "query" {
			fact("promql", name, str(v))
		}
	}
	for k, key := range keys {
		if _, ok := md[k]; key.required && !ok {
			bad("%s: %s trigger: metadata %q is required", id, typ, k)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
