package terraform_test

// A small reader of the module's configuration with hashicorp/hcl/v2: the
// google provider cannot be downloaded here, so nothing is planned. The
// tests read the syntax (resource types, nested blocks, the references of
// each expression) and evaluate what needs no provider: variables with
// their defaults and validations, locals, and resource attributes whose
// inputs are variables and locals. References to resources evaluate to
// unknown values, except the functions' URLs, which stand in as
// https://<name>.fn.test so that push endpoints can be checked.

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// tfModule is one folder of .tf files.
type tfModule struct {
	dir       string
	src       map[string][]byte // file name → source
	files     map[string]*hclsyntax.Body
	variables map[string]*hclsyntax.Block
	locals    map[string]*hclsyntax.Attribute
	resources map[string]*hclsyntax.Block // "type.name"
	modules   map[string]*hclsyntax.Block
	outputs   map[string]*hclsyntax.Block
}

// loadModule parses every .tf file of dir (not its subfolders).
func loadModule(t *testing.T, dir string) *tfModule {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no .tf files in %s (%v)", dir, err)
	}
	sort.Strings(paths)
	m := &tfModule{
		dir: dir, src: map[string][]byte{}, files: map[string]*hclsyntax.Body{},
		variables: map[string]*hclsyntax.Block{}, locals: map[string]*hclsyntax.Attribute{},
		resources: map[string]*hclsyntax.Block{}, modules: map[string]*hclsyntax.Block{}, outputs: map[string]*hclsyntax.Block{},
	}
	p := hclparse.NewParser()
	for _, path := range paths {
		f, diags := p.ParseHCLFile(path)
		if diags.HasErrors() {
			t.Fatalf("parse %s: %s", path, diags.Error())
		}
		name := filepath.Base(path)
		m.src[name] = f.Bytes
		body := f.Body.(*hclsyntax.Body)
		m.files[name] = body
		for _, b := range body.Blocks {
			switch b.Type {
			case "variable":
				m.variables[b.Labels[0]] = b
			case "locals":
				for n, a := range b.Body.Attributes {
					if _, dup := m.locals[n]; dup {
						t.Fatalf("%s: local.%s is defined twice", path, n)
					}
					m.locals[n] = a
				}
			case "resource":
				m.resources[b.Labels[0]+"."+b.Labels[1]] = b
			case "module":
				m.modules[b.Labels[0]] = b
			case "output":
				m.outputs[b.Labels[0]] = b
			}
		}
	}
	return m
}

// resourcesOf returns the resources of one type, by name.
func (m *tfModule) resourcesOf(typ string) map[string]*hclsyntax.Block {
	out := map[string]*hclsyntax.Block{}
	for k, b := range m.resources {
		if b.Labels[0] == typ {
			out[strings.TrimPrefix(k, typ+".")] = b
		}
	}
	return out
}

func (m *tfModule) resource(t *testing.T, addr string) *hclsyntax.Block {
	t.Helper()
	b, ok := m.resources[addr]
	if !ok {
		t.Fatalf("resource %s is missing", addr)
	}
	return b
}

// text is an expression's source text.
func (m *tfModule) text(e hclsyntax.Expression) string {
	r := e.Range()
	return string(m.src[filepath.Base(r.Filename)][r.Start.Byte:r.End.Byte])
}

// block returns the first nested block of type typ in b (nil when none).
func block(b *hclsyntax.Block, typ string) *hclsyntax.Block {
	for _, nb := range b.Body.Blocks {
		if nb.Type == typ {
			return nb
		}
	}
	return nil
}

// attr follows a path of nested block types to an attribute: attr(b,
// "service_config", "timeout_seconds"). nil when any step is missing.
func attr(b *hclsyntax.Block, path ...string) *hclsyntax.Attribute {
	for _, p := range path[:len(path)-1] {
		if b = block(b, p); b == nil {
			return nil
		}
	}
	return b.Body.Attributes[path[len(path)-1]]
}

// refs lists the references of an expression as "root.name" (var.x,
// local.x, google_service_account.reader, each.value ...).
func refs(e hclsyntax.Expression) []string {
	var out []string
	for _, tr := range e.Variables() {
		root := tr.RootName()
		name := ""
		if len(tr) > 1 {
			if a, ok := tr[1].(hcl.TraverseAttr); ok {
				name = a.Name
			}
		}
		out = append(out, root+"."+name)
	}
	return out
}

// ---- evaluation ----

// functions are the Terraform functions the module uses (those of go-cty's
// stdlib, which Terraform's are built on, and a few written here). A
// module that calls another fails to evaluate, naming it.
var functions = map[string]function.Function{
	"alltrue":     boolFold(true),
	"anytrue":     boolFold(false),
	"can":         tryfunc.CanFunc,
	"coalesce":    stdlib.CoalesceFunc,
	"compact":     stdlib.CompactFunc,
	"concat":      stdlib.ConcatFunc,
	"contains":    stdlib.ContainsFunc,
	"distinct":    stdlib.DistinctFunc,
	"endswith":    stringPredicate(strings.HasSuffix),
	"filemd5":     unknownString(),
	"flatten":     stdlib.FlattenFunc,
	"floor":       stdlib.FloorFunc,
	"format":      stdlib.FormatFunc,
	"join":        stdlib.JoinFunc,
	"jsonencode":  stdlib.JSONEncodeFunc,
	"keys":        stdlib.KeysFunc,
	"length":      lengthFunc(),
	"lookup":      stdlib.LookupFunc,
	"lower":       stdlib.LowerFunc,
	"max":         stdlib.MaxFunc,
	"merge":       stdlib.MergeFunc,
	"min":         stdlib.MinFunc,
	"regex":       stdlib.RegexFunc,
	"replace":     stdlib.ReplaceFunc,
	"sort":        stdlib.SortFunc,
	"split":       stdlib.SplitFunc,
	"startswith":  stringPredicate(strings.HasPrefix),
	"strcontains": stringPredicate(strings.Contains),
	"substr":      stdlib.SubstrFunc,
	"tolist":      convertTo(cty.List(cty.DynamicPseudoType)),
	"tomap":       convertTo(cty.Map(cty.DynamicPseudoType)),
	"tonumber":    convertTo(cty.Number),
	"toset":       convertTo(cty.Set(cty.DynamicPseudoType)),
	"tostring":    convertTo(cty.String),
	"trimprefix":  stdlib.TrimPrefixFunc,
	"trimsuffix":  stdlib.TrimSuffixFunc,
	"try":         tryfunc.TryFunc,
	"upper":       stdlib.UpperFunc,
	"urlencode":   urlencode(),
	"values":      stdlib.ValuesFunc,
}

func boolFold(all bool) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if !args[0].IsWhollyKnown() {
				return cty.UnknownVal(cty.Bool), nil
			}
			for _, v := range args[0].AsValueSlice() {
				if v.IsNull() {
					return cty.NilVal, fmt.Errorf("null element")
				}
				if v.True() != all {
					return cty.BoolVal(!all), nil
				}
			}
			return cty.BoolVal(all), nil
		},
	})
}

// lengthFunc is Terraform's length: of a string (in characters) or of a
// collection.
func lengthFunc() function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType, AllowDynamicType: true, AllowUnknown: true}},
		Type:   function.StaticReturnType(cty.Number),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if args[0].Type() == cty.String {
				return stdlib.Strlen(args[0])
			}
			return stdlib.Length(args[0])
		},
	})
}

func stringPredicate(f func(s, x string) bool) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "s", Type: cty.String}, {Name: "x", Type: cty.String}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.BoolVal(f(args[0].AsString(), args[1].AsString())), nil
		},
	})
}

func urlencode() function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "s", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.StringVal(strings.ReplaceAll(url.QueryEscape(args[0].AsString()), "+", "%20")), nil
		},
	})
}

func unknownString() function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "s", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func([]cty.Value, cty.Type) (cty.Value, error) {
			return cty.UnknownVal(cty.String), nil
		},
	})
}

func convertTo(ty cty.Type) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType, AllowNull: true, AllowUnknown: true}},
		Type: func(args []cty.Value) (cty.Type, error) {
			v, err := convert.Convert(args[0], ty)
			if err != nil {
				return cty.NilType, err
			}
			return v.Type(), nil
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return convert.Convert(args[0], ty)
		},
	})
}

// inputs are values given to a module's variables.
type inputs map[string]cty.Value

// varValue converts a variable's given value (or its default) to its type
// constraint, optional attributes' defaults applied, as Terraform does.
func (m *tfModule) varValue(name string, given cty.Value, ok bool) (cty.Value, error) {
	b := m.variables[name]
	var v cty.Value
	switch {
	case ok:
		v = given
	case b.Body.Attributes["default"] != nil:
		d, diags := b.Body.Attributes["default"].Expr.Value(nil)
		if diags.HasErrors() {
			return cty.NilVal, fmt.Errorf("default: %s", diags.Error())
		}
		v = d
	default:
		return cty.NilVal, fmt.Errorf("no value and no default")
	}
	ta := b.Body.Attributes["type"]
	if ta == nil {
		return v, nil
	}
	ty, defaults, diags := typeexpr.TypeConstraintWithDefaults(ta.Expr)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("type: %s", diags.Error())
	}
	if defaults != nil {
		v = defaults.Apply(v)
	}
	return convert.Convert(v, ty)
}

// validate evaluates every validation condition of variable name on v: nil
// when all hold, else the error messages of those that do not (or do not
// evaluate).
func (m *tfModule) validate(name string, v cty.Value) []string {
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{name: v})}, Functions: functions}
	var failed []string
	for _, vb := range m.variables[name].Body.Blocks {
		if vb.Type != "validation" {
			continue
		}
		msg := m.text(vb.Body.Attributes["error_message"].Expr)
		ok, diags := vb.Body.Attributes["condition"].Expr.Value(ctx)
		switch {
		case diags.HasErrors():
			failed = append(failed, "does not evaluate ("+diags.Error()+"): "+msg)
		case !ok.IsKnown() || ok.IsNull() || !ok.Type().Equals(cty.Bool):
			failed = append(failed, "not a known bool: "+msg)
		case ok.False():
			failed = append(failed, msg)
		}
	}
	return failed
}

// evaluator evaluates a module's expressions with given inputs.
type evaluator struct {
	t      *testing.T
	m      *tfModule
	vars   map[string]cty.Value
	locals map[string]cty.Value
	busy   map[string]bool
	res    map[string]cty.Value // resource roots: type → object of name → stand-in
}

// evaluate sets every variable from in (or its default), checking each
// against its validations, and returns an evaluator of the module.
func (m *tfModule) evaluate(t *testing.T, in inputs) *evaluator {
	t.Helper()
	for k := range in {
		if _, ok := m.variables[k]; !ok {
			t.Fatalf("input %s is not a variable of the module", k)
		}
	}
	e := &evaluator{t: t, m: m, vars: map[string]cty.Value{}, locals: map[string]cty.Value{}, busy: map[string]bool{}, res: map[string]cty.Value{}}
	for name := range m.variables {
		given, ok := in[name]
		v, err := m.varValue(name, given, ok)
		if err != nil {
			t.Fatalf("var.%s: %v", name, err)
		}
		if failed := m.validate(name, v); failed != nil {
			t.Fatalf("var.%s fails its validation: %s", name, strings.Join(failed, "; "))
		}
		e.vars[name] = v
	}
	// Resource stand-ins: unknown, but functions have a name and a URL.
	byType := map[string]map[string]cty.Value{}
	for _, b := range m.resources {
		typ, name := b.Labels[0], b.Labels[1]
		if byType[typ] == nil {
			byType[typ] = map[string]cty.Value{}
		}
		v := cty.DynamicVal
		if typ == "google_cloudfunctions2_function" {
			fn := func(n string) cty.Value {
				return cty.ObjectVal(map[string]cty.Value{
					"name":           cty.StringVal(n),
					"service_config": cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"uri": cty.StringVal("https://" + n + ".fn.test")})}),
				})
			}
			if fe := b.Body.Attributes["for_each"]; fe != nil {
				inst := map[string]cty.Value{}
				for k := range e.forEach(b, nil) {
					inst[k] = fn(name + "-" + k)
				}
				v = cty.ObjectVal(inst)
			} else {
				v = fn(name)
			}
		}
		byType[typ][name] = v
	}
	for typ, names := range byType {
		e.res[typ] = cty.ObjectVal(names)
	}
	return e
}

func (e *evaluator) ctx(each map[string]cty.Value) *hcl.EvalContext {
	vars := map[string]cty.Value{
		"var":   cty.ObjectVal(e.vars),
		"local": cty.ObjectVal(e.locals),
		"data": cty.ObjectVal(map[string]cty.Value{
			"google_project": cty.ObjectVal(map[string]cty.Value{"this": cty.ObjectVal(map[string]cty.Value{"number": cty.StringVal("123456789012")})}),
		}),
		"path": cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(e.m.dir), "root": cty.StringVal(e.m.dir)}),
	}
	for k, v := range e.res {
		vars[k] = v
	}
	if each != nil {
		vars["each"] = cty.ObjectVal(each)
	}
	return &hcl.EvalContext{Variables: vars, Functions: functions}
}

// local evaluates local.name (and the locals it needs first).
func (e *evaluator) local(name string) cty.Value {
	e.t.Helper()
	if v, ok := e.locals[name]; ok {
		return v
	}
	a, ok := e.m.locals[name]
	if !ok {
		e.t.Fatalf("local.%s is not defined", name)
	}
	if e.busy[name] {
		e.t.Fatalf("local.%s depends on itself", name)
	}
	e.busy[name] = true
	for _, r := range refs(a.Expr) {
		if dep, ok := strings.CutPrefix(r, "local."); ok {
			e.local(dep)
		}
	}
	v, diags := a.Expr.Value(e.ctx(nil))
	if diags.HasErrors() {
		e.t.Fatalf("local.%s: %s", name, diags.Error())
	}
	e.locals[name] = v
	return v
}

// value evaluates an expression, each (may be nil) giving each.key and
// each.value of a for_each instance.
func (e *evaluator) value(x hclsyntax.Expression, each map[string]cty.Value) cty.Value {
	e.t.Helper()
	for _, r := range refs(x) {
		if dep, ok := strings.CutPrefix(r, "local."); ok {
			e.local(dep)
		}
	}
	v, diags := x.Value(e.ctx(each))
	if diags.HasErrors() {
		e.t.Fatalf("%s: %s", e.m.text(x), diags.Error())
	}
	return v
}

// str evaluates an expression that must be a known string.
func (e *evaluator) str(x hclsyntax.Expression, each map[string]cty.Value) string {
	e.t.Helper()
	v := e.value(x, each)
	if !v.IsWhollyKnown() || v.IsNull() {
		e.t.Fatalf("%s: not a known value", e.m.text(x))
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil {
		e.t.Fatalf("%s: %v", e.m.text(x), err)
	}
	return s.AsString()
}

// forEach evaluates a resource's for_each into its instances' each values
// (nil when the resource has no for_each).
func (e *evaluator) forEach(b *hclsyntax.Block, _ map[string]cty.Value) map[string]map[string]cty.Value {
	e.t.Helper()
	fe := b.Body.Attributes["for_each"]
	if fe == nil {
		return nil
	}
	v := e.value(fe.Expr, nil)
	// Terraform needs the keys known; values may be unknown until apply.
	if !v.IsKnown() || (v.Type().IsSetType() && !v.IsWhollyKnown()) {
		e.t.Fatalf("%s.%s: the keys of for_each %s are not known without a provider", b.Labels[0], b.Labels[1], e.m.text(fe.Expr))
	}
	out := map[string]map[string]cty.Value{}
	if v.Type().IsSetType() {
		for _, el := range v.AsValueSlice() {
			out[el.AsString()] = map[string]cty.Value{"key": el, "value": el}
		}
		return out
	}
	for k, el := range v.AsValueMap() {
		out[k] = map[string]cty.Value{"key": cty.StringVal(k), "value": el}
	}
	return out
}

// goValue turns a known cty value into plain Go values (strings, float64,
// bool, maps, slices), for comparisons.
func goValue(v cty.Value) any {
	switch {
	case v.IsNull():
		return nil
	case v.Type() == cty.String:
		return v.AsString()
	case v.Type() == cty.Number:
		f, _ := v.AsBigFloat().Float64()
		return f
	case v.Type() == cty.Bool:
		return v.True()
	case v.Type().IsObjectType() || v.Type().IsMapType():
		out := map[string]any{}
		for k, el := range v.AsValueMap() {
			out[k] = goValue(el)
		}
		return out
	case v.CanIterateElements():
		var out []any
		for _, el := range v.AsValueSlice() {
			out = append(out, goValue(el))
		}
		return out
	}
	return v.GoString()
}

// stringMap evaluates an expression to a map of known strings.
func (e *evaluator) stringMap(x hclsyntax.Expression, each map[string]cty.Value) map[string]string {
	e.t.Helper()
	v := e.value(x, each)
	if !v.IsWhollyKnown() {
		e.t.Fatalf("%s: not known without a provider", e.m.text(x))
	}
	out := map[string]string{}
	for k, el := range v.AsValueMap() {
		s, err := convert.Convert(el, cty.String)
		if err != nil {
			e.t.Fatalf("%s: %s: %v", e.m.text(x), k, err)
		}
		out[k] = s.AsString()
	}
	return out
}

// hclValue parses a value written in HCL (for test inputs).
func hclValue(t *testing.T, src string) cty.Value {
	t.Helper()
	x, diags := hclsyntax.ParseExpression([]byte(src), "input", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("input %s: %s", src, diags.Error())
	}
	v, diags := x.Value(&hcl.EvalContext{Functions: functions})
	if diags.HasErrors() {
		t.Fatalf("input %s: %s", src, diags.Error())
	}
	return v
}

// readTFVars reads a .tfvars-style file of attributes.
func readTFVars(t *testing.T, path string) inputs {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("parse %s: %s", path, diags.Error())
	}
	attrs, diags := f.Body.JustAttributes()
	if diags.HasErrors() {
		t.Fatalf("%s: %s", path, diags.Error())
	}
	out := inputs{}
	for n, a := range attrs {
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			t.Fatalf("%s: %s: %s", path, n, diags.Error())
		}
		out[n] = v
	}
	return out
}
