package conformance

import (
	"slices"
	"strings"
)

// moduleSpec is a test module, named as in the official suite.
type moduleSpec struct {
	Name string
	run  func(*moduleRun)
	// browser prefers Chromium over the HTTP driver, for screenshots,
	// iframes or a real form_post submission.
	browser bool
	// dynamicOnly modules need dynamic client registration; with static
	// clients they are not applicable and do not run, as in the suite.
	dynamicOnly bool
	// exclusive modules run alone after all others, because they change
	// the provider's signing keys under the other modules.
	exclusive bool
}

// plan is a certification plan of the official suite.
type plan struct {
	// Name is the harness's short name, SuiteName the suite's plan name.
	Name      string
	SuiteName string
	variants  func(o *Options) []variant
	modules   func(v variant, first bool) []string
}

var plans = []*plan{
	{Name: "basic", SuiteName: "oidcc-basic-certification-test-plan",
		variants: fixedVariants("", "code"), modules: basicModules},
	{Name: "implicit", SuiteName: "oidcc-implicit-certification-test-plan",
		variants: fixedVariants("", "id_token", "id_token token"), modules: implicitModules},
	{Name: "hybrid", SuiteName: "oidcc-hybrid-certification-test-plan",
		variants: fixedVariants("", "code id_token", "code token", "code id_token token"), modules: hybridModules},
	{Name: "config", SuiteName: "oidcc-config-certification-test-plan",
		variants: fixedVariants("", "code"), modules: func(variant, bool) []string { return []string{"oidcc-discovery-endpoint-verification"} }},
	{Name: "dynamic", SuiteName: "oidcc-dynamic-certification-test-plan",
		variants: func(o *Options) []variant {
			return []variant{{ResponseType: o.ResponseType, ClientAuth: "private_key_jwt"}}
		}, modules: dynamicModules},
	{Name: "formpost-basic", SuiteName: "oidcc-formpost-basic-certification-test-plan",
		variants: fixedVariants("form_post", "code"), modules: basicModules},
	{Name: "formpost-implicit", SuiteName: "oidcc-formpost-implicit-certification-test-plan",
		variants: fixedVariants("form_post", "id_token", "id_token token"), modules: implicitModules},
	{Name: "formpost-hybrid", SuiteName: "oidcc-formpost-hybrid-certification-test-plan",
		variants: fixedVariants("form_post", "code id_token", "code token", "code id_token token"), modules: hybridModules},
	{Name: "rp-initiated-logout", SuiteName: "oidcc-rp-initiated-logout-certification-test-plan",
		variants: fixedVariants("", "code"), modules: func(variant, bool) []string { return rpLogoutModules }},
	{Name: "backchannel-logout", SuiteName: "oidcc-backchannel-rp-initiated-logout-certification-test-plan",
		variants: fixedVariants("", "code"), modules: func(variant, bool) []string {
			return []string{"oidcc-backchannel-logout-discovery-endpoint-verification", "oidcc-backchannel-rp-initiated-logout"}
		}},
	{Name: "frontchannel-logout", SuiteName: "oidcc-frontchannel-rp-initiated-logout-certification-test-plan",
		variants: fixedVariants("", "code"), modules: func(variant, bool) []string {
			return []string{"oidcc-frontchannel-logout-discovery-endpoint-verification", "oidcc-frontchannel-rp-initiated-logout"}
		}},
}

// PlanNames returns the names --plan accepts, besides "all".
func PlanNames() []string {
	names := make([]string, 0, len(plans))
	for _, p := range plans {
		names = append(names, p.Name)
	}
	return names
}

func planByName(name string) *plan {
	for _, p := range plans {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func fixedVariants(mode string, responseTypes ...string) func(*Options) []variant {
	return func(*Options) []variant {
		var out []variant
		for _, rt := range responseTypes {
			out = append(out, variant{ResponseType: rt, ResponseMode: mode, ClientAuth: "client_secret_basic"})
		}
		return out
	}
}

var scopeModules = []string{"oidcc-scope-profile", "oidcc-scope-email", "oidcc-scope-address", "oidcc-scope-phone", "oidcc-scope-all"}

// basicModules lists the Basic OP plan's modules in the suite's order.
func basicModules(variant, bool) []string {
	list := []string{
		"oidcc-server", "oidcc-response-type-missing", "oidcc-idtoken-signature", "oidcc-idtoken-unsigned",
		"oidcc-userinfo-get", "oidcc-userinfo-post-header", "oidcc-userinfo-post-body",
		"oidcc-ensure-request-without-nonce-succeeds-for-code-flow",
	}
	list = append(list, scopeModules...)
	return append(list,
		"oidcc-alternate-happy-flow", "oidcc-display-page", "oidcc-display-popup", "oidcc-prompt-login",
		"oidcc-prompt-none-not-logged-in", "oidcc-prompt-none-logged-in", "oidcc-max-age-1", "oidcc-max-age-10000",
		"oidcc-ensure-request-with-unknown-parameter-succeeds", "oidcc-id-token-hint", "oidcc-login-hint",
		"oidcc-ui-locales", "oidcc-claims-locales", "oidcc-ensure-request-with-acr-values-succeeds",
		"oidcc-codereuse", "oidcc-codereuse-30seconds", "oidcc-ensure-registered-redirect-uri",
		"oidcc-ensure-post-request-succeeds", "oidcc-server-client-secret-post",
		"oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported",
		"oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported",
		"oidcc-claims-essential", "oidcc-ensure-request-object-with-redirect-uri", "oidcc-refresh-token",
		"oidcc-ensure-request-with-valid-pkce-succeeds",
	)
}

// implicitModules lists the Implicit OP plan's modules; the userinfo and
// response-type-missing modules run only with an access token.
func implicitModules(v variant, _ bool) []string {
	list := []string{"oidcc-server", "oidcc-idtoken-signature", "oidcc-ensure-request-without-nonce-fails"}
	list = append(list, scopeModules...)
	list = append(list,
		"oidcc-alternate-happy-flow", "oidcc-display-page", "oidcc-display-popup", "oidcc-prompt-login",
		"oidcc-prompt-none-not-logged-in", "oidcc-prompt-none-logged-in", "oidcc-max-age-1", "oidcc-max-age-10000",
		"oidcc-ensure-request-with-unknown-parameter-succeeds", "oidcc-id-token-hint", "oidcc-login-hint",
		"oidcc-ui-locales", "oidcc-claims-locales", "oidcc-ensure-request-with-acr-values-succeeds",
		"oidcc-ensure-registered-redirect-uri",
		"oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported",
		"oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported",
		"oidcc-ensure-request-object-with-redirect-uri", "oidcc-claims-essential",
	)
	if v.hasToken() {
		list = append(list, "oidcc-userinfo-get", "oidcc-userinfo-post-header", "oidcc-userinfo-post-body", "oidcc-response-type-missing")
	}
	return list
}

// hybridModules lists the Hybrid OP plan's modules: Basic's, without
// post-request and idtoken-unsigned, with the nonce module the response
// type calls for, and three modules only in the first variant.
func hybridModules(v variant, first bool) []string {
	var list []string
	for _, name := range basicModules(v, first) {
		switch name {
		case "oidcc-ensure-post-request-succeeds", "oidcc-idtoken-unsigned":
			continue
		case "oidcc-response-type-missing", "oidcc-alternate-happy-flow", "oidcc-ensure-request-with-valid-pkce-succeeds":
			if !first {
				continue
			}
		case "oidcc-ensure-request-without-nonce-succeeds-for-code-flow":
			if v.hasIDToken() {
				name = "oidcc-ensure-request-without-nonce-fails"
			}
		}
		list = append(list, name)
	}
	return list
}

// dynamicModules lists the Dynamic OP plan's modules for the chosen
// response type.
func dynamicModules(v variant, _ bool) []string {
	list := []string{"oidcc-idtoken-rs256"}
	if v.ResponseType == "code" || v.ResponseType == "code token" {
		list = append(list, "oidcc-idtoken-unsigned")
	}
	if v.ResponseType != "id_token" {
		list = append(list, "oidcc-userinfo-rs256")
	}
	list = append(list,
		"oidcc-ensure-redirect-uri-in-authorization-request", "oidcc-redirect-uri-query-OK",
		"oidcc-redirect-uri-query-mismatch", "oidcc-redirect-uri-query-added", "oidcc-redirect-uri-regfrag",
		"oidcc-discovery-endpoint-verification", "oidcc-server",
		"oidcc-registration-logo-uri", "oidcc-registration-policy-uri", "oidcc-registration-tos-uri",
	)
	if v.hasCode() {
		list = append(list, "oidcc-registration-jwks-uri")
	}
	list = append(list, "oidcc-registration-sector-uri", "oidcc-registration-sector-bad", "oidcc-server-rotate-keys")
	if v.hasCode() {
		list = append(list, "oidcc-refresh-token-rp-key-rotation")
	}
	list = append(list, "oidcc-request-uri-unsigned", "oidcc-request-uri-signed-rs256",
		"oidcc-ensure-request-object-with-redirect-uri", "oidcc-refresh-token")
	if v.hasCode() {
		list = append(list, "oidcc-ensure-client-assertion-with-iss-aud-succeeds")
	}
	return list
}

var rpLogoutModules = []string{
	"oidcc-rp-initiated-logout-discovery-endpoint-verification",
	"oidcc-rp-initiated-logout",
	"oidcc-rp-initiated-logout-bad-post-logout-redirect-uri",
	"oidcc-rp-initiated-logout-modified-id-token-hint",
	"oidcc-rp-initiated-logout-bad-id-token-hint",
	"oidcc-rp-initiated-logout-no-id-token-hint",
	"oidcc-rp-initiated-logout-no-params",
	"oidcc-rp-initiated-logout-no-post-logout-redirect-uri",
	"oidcc-rp-initiated-logout-only-state",
	"oidcc-rp-initiated-logout-no-state",
	"oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri",
}

// plannedModule is one module to run.
type plannedModule struct {
	plan    *plan
	variant variant
	spec    *moduleSpec
	// skipReason, when not empty, makes the module SKIPPED without
	// running it.
	skipReason string
}

// dynamicPlanSkipReason is why every module of the dynamic plan is
// SKIPPED with static clients. The official suite fixes that plan's client
// registration to dynamic_client, and its modules authenticate with
// private_key_jwt, for which static clients have no key.
const dynamicPlanSkipReason = "the Dynamic OP plan needs dynamic client registration"

// plannedModules expands the selected plans into modules. With static
// clients, the dynamic plan's modules are SKIPPED and the other plans'
// modules that need dynamic registration are dropped; refresh-token
// modules are dropped where the suite marks them not applicable.
func plannedModules(o *Options, static bool) []plannedModule {
	selected := o.Plans
	if slices.Contains(selected, "all") {
		selected = PlanNames()
	}
	var out []plannedModule
	for _, p := range plans {
		if !slices.Contains(selected, p.Name) {
			continue
		}
		for i, v := range p.variants(o) {
			if p.Name == "config" {
				v = variant{ResponseType: "code", ClientAuth: "client_secret_basic"}
			}
			for _, name := range p.modules(v, i == 0) {
				spec := moduleRegistry[name]
				if spec == nil {
					panic("conformance: module not implemented: " + name)
				}
				if name == "oidcc-refresh-token" && !v.hasCode() {
					continue
				}
				if len(o.Modules) > 0 && !slices.Contains(o.Modules, name) {
					continue
				}
				if static && p.Name == "dynamic" {
					out = append(out, plannedModule{plan: p, variant: v, spec: spec, skipReason: dynamicPlanSkipReason})
					continue
				}
				if spec.dynamicOnly && static {
					continue
				}
				out = append(out, plannedModule{plan: p, variant: v, spec: spec})
			}
		}
	}
	return out
}

// moduleRegistry holds every implemented module by name.
var moduleRegistry = map[string]*moduleSpec{}

func defineModule(spec *moduleSpec) *moduleSpec {
	if _, exists := moduleRegistry[spec.Name]; exists || !strings.HasPrefix(spec.Name, "oidcc-") {
		panic("conformance: bad or duplicate module " + spec.Name)
	}
	moduleRegistry[spec.Name] = spec
	return spec
}
