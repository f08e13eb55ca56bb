package main

import (
	"fmt"
	"maps"

	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// AddonsArgs configures the Addons component.
type AddonsArgs struct {
	// Config is the whole stack config; it reads Addons and Kubernetes.
	Config Config
}

// Addons installs the cluster addons as Helm releases: the NGINX ingress
// controller, KEDA and cert-manager, each toggled in config. A release
// counts as created only when its workloads are ready, so resources that
// depend on a release find its CRDs and webhooks serving.
type Addons struct {
	pulumi.ResourceState

	// IngressNginx, KEDA and CertManager are the releases, or nil when
	// the addon is off or the program runs in render mode.
	IngressNginx pulumi.Resource
	KEDA         pulumi.Resource
	CertManager  pulumi.Resource
}

// NewAddons registers the Addons component.
func NewAddons(ctx *pulumi.Context, name string, args *AddonsArgs, opts ...pulumi.ResourceOption) (*Addons, error) {
	a := &Addons{}
	if err := ctx.RegisterComponentResource("taskflow:infra:Addons", name, a, opts...); err != nil {
		return nil, fmt.Errorf("register addons component: %w", err)
	}
	cfg := args.Config

	installed := pulumi.StringArray{}
	if cfg.renderMode() {
		// Render mode writes plain manifests, and a Helm release is not one.
		if err := ctx.Log.Warn("render mode: Helm releases of addons are not rendered", &pulumi.LogArgs{Resource: a}); err != nil {
			return nil, fmt.Errorf("log render mode warning: %w", err)
		}
	} else {
		releases := []struct {
			addon  AddonConfig
			values map[string]any
			target *pulumi.Resource
		}{
			{cfg.Addons.IngressNginx, ingressNginxValues(), &a.IngressNginx},
			{cfg.Addons.KEDA, map[string]any{}, &a.KEDA},
			// The chart installs the CRDs and keeps them when the release
			// is deleted, so certificates survive a reinstall.
			{cfg.Addons.CertManager, map[string]any{"crds": map[string]any{"enabled": true, "keep": true}}, &a.CertManager},
		}
		for _, r := range releases {
			if !r.addon.Enabled {
				continue
			}
			release, err := newRelease(ctx, a, r.addon, r.values)
			if err != nil {
				return nil, err
			}
			*r.target = release
			installed = append(installed, pulumi.String(r.addon.Chart))
		}
	}

	if err := ctx.RegisterResourceOutputs(a, pulumi.Map{"installed": installed}); err != nil {
		return nil, fmt.Errorf("register addons outputs: %w", err)
	}
	return a, nil
}

// ingressNginxValues runs the controller on kind's node labelled
// ingress-ready=true with host ports 80 and 443. A kind cluster config with
// extraPortMappings for 80 and 443 exposes them on the machine.
func ingressNginxValues() map[string]any {
	return map[string]any{
		"controller": map[string]any{
			"hostPort":     map[string]any{"enabled": true},
			"service":      map[string]any{"type": "NodePort"},
			"nodeSelector": map[string]any{"ingress-ready": "true"},
			"tolerations": []any{
				map[string]any{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
			},
			"publishService": map[string]any{"enabled": false},
			"extraArgs":      map[string]any{"publish-status-address": "localhost"},
		},
	}
}

// newRelease installs one chart into its own namespace.
func newRelease(ctx *pulumi.Context, parent pulumi.Resource, addon AddonConfig, defaults map[string]any) (*helmv3.Release, error) {
	values := mergeValues(defaults, addon.Values)
	release, err := helmv3.NewRelease(ctx, addon.Chart, &helmv3.ReleaseArgs{
		Name:            pulumi.String(addon.Chart),
		Chart:           pulumi.String(addon.Chart),
		Version:         pulumi.String(addon.Version),
		Namespace:       pulumi.String(addon.Namespace),
		CreateNamespace: pulumi.Bool(true),
		RepositoryOpts:  &helmv3.RepositoryOptsArgs{Repo: pulumi.String(addon.Repo)},
		Values:          pulumi.ToMap(values),
		Timeout:         pulumi.Int(600),
	}, pulumi.Parent(parent))
	if err != nil {
		return nil, fmt.Errorf("install helm release %s: %w", addon.Chart, err)
	}
	return release, nil
}

// mergeValues returns base with override merged in: nested maps merge key
// by key, any other override value replaces the base value.
func mergeValues(base, override map[string]any) map[string]any {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range override {
		bm, baseIsMap := out[k].(map[string]any)
		om, overrideIsMap := v.(map[string]any)
		if baseIsMap && overrideIsMap {
			out[k] = mergeValues(bm, om)
			continue
		}
		out[k] = v
	}
	return out
}
