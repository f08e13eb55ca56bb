package main

import (
	"encoding/base64"
	"fmt"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Names of the TLS objects.
const (
	selfSignedIssuer = "taskflow-selfsigned"
	caName           = "taskflow-ca"
	tlsSecret        = "taskflow-tls"
	ingressName      = "taskflow"
)

// IngressArgs configures the Ingress component.
type IngressArgs struct {
	// Namespace receives every namespaced object.
	Namespace pulumi.StringInput
	// APIService and MonitorService are the backends.
	APIService     pulumi.StringInput
	MonitorService pulumi.StringInput
	// Config is the whole stack config; it reads Ingress, Monitor and Kubernetes.
	Config Config
	// CertManagerReady, when set, is the release whose CRDs the issuers need.
	CertManagerReady pulumi.Resource
	// ControllerReady, when set, is the ingress controller release. Its
	// admission webhook must respond before an Ingress can be created.
	ControllerReady pulumi.Resource
}

// Ingress routes /api to the api and the monitor's URL prefix to the
// monitor through the NGINX ingress class, without rewriting paths. With
// TLS on, cert-manager issues the host's certificate from a CA that a
// self-signed ClusterIssuer bootstraps:
//
//	ClusterIssuer taskflow-selfsigned → Certificate taskflow-ca (isCA)
//	→ Issuer taskflow-ca → Certificate taskflow-tls → Ingress TLS
type Ingress struct {
	pulumi.ResourceState

	// URLs maps "api" and "monitor" to their external URLs.
	URLs pulumi.StringMapOutput
	// CACertificate is the PEM CA certificate to verify the host with
	// (curl --cacert). It is empty when TLS or ExportCA is off, or in render mode.
	CACertificate pulumi.StringOutput
}

// NewIngress registers the Ingress component.
func NewIngress(ctx *pulumi.Context, name string, args *IngressArgs, opts ...pulumi.ResourceOption) (*Ingress, error) {
	in := &Ingress{}
	if err := ctx.RegisterComponentResource("taskflow:infra:Ingress", name, in, opts...); err != nil {
		return nil, fmt.Errorf("register ingress component: %w", err)
	}
	cfg := args.Config
	host := cfg.Ingress.Host
	in.CACertificate = pulumi.String("").ToStringOutput()

	// TLS chain.
	scheme := "http"
	if cfg.Ingress.TLS {
		scheme = "https"
		ca, err := newCertificateChain(ctx, in, args)
		if err != nil {
			return nil, err
		}
		if cfg.Ingress.ExportCA && !cfg.renderMode() {
			pem, err := readCACertificate(ctx, in, args.Namespace, ca)
			if err != nil {
				return nil, err
			}
			in.CACertificate = pem
		}
	}

	// Ingress.
	path := func(prefix string, service pulumi.StringInput, port int) networkingv1.HTTPIngressPathArgs {
		return networkingv1.HTTPIngressPathArgs{
			Path:     pulumi.String(prefix),
			PathType: pulumi.String("Prefix"),
			Backend: networkingv1.IngressBackendArgs{
				Service: &networkingv1.IngressServiceBackendArgs{
					Name: service,
					Port: &networkingv1.ServiceBackendPortArgs{Number: pulumi.Int(port)},
				},
			},
		}
	}
	spec := &networkingv1.IngressSpecArgs{
		IngressClassName: pulumi.String(cfg.Ingress.ClassName),
		Rules: networkingv1.IngressRuleArray{
			networkingv1.IngressRuleArgs{
				Host: pulumi.String(host),
				Http: &networkingv1.HTTPIngressRuleValueArgs{
					Paths: networkingv1.HTTPIngressPathArray{
						path("/api", args.APIService, portAPI),
						path(cfg.Monitor.URLPrefix, args.MonitorService, portMonitor),
					},
				},
			},
		},
	}
	if cfg.Ingress.TLS {
		spec.Tls = networkingv1.IngressTLSArray{
			networkingv1.IngressTLSArgs{Hosts: pulumi.ToStringArray([]string{host}), SecretName: pulumi.String(tlsSecret)},
		}
	}
	ingressOpts := []pulumi.ResourceOption{pulumi.Parent(in)}
	if args.ControllerReady != nil {
		ingressOpts = append(ingressOpts, pulumi.DependsOn([]pulumi.Resource{args.ControllerReady}))
	}
	meta := objectMeta(ingressName, args.Namespace, appName, "ingress")
	if cfg.Ingress.SkipAwait {
		meta.Annotations = pulumi.StringMap{"pulumi.com/skipAwait": pulumi.String("true")}
	}
	_, err := networkingv1.NewIngress(ctx, name+"-ingress", &networkingv1.IngressArgs{
		Metadata: meta,
		Spec:     spec,
	}, ingressOpts...)
	if err != nil {
		return nil, fmt.Errorf("create ingress: %w", err)
	}

	in.URLs = pulumi.StringMap{
		"api":     pulumi.Sprintf("%s://%s/api", scheme, host),
		"monitor": pulumi.Sprintf("%s://%s%s", scheme, host, cfg.Monitor.URLPrefix),
	}.ToStringMapOutput()
	if err := ctx.RegisterResourceOutputs(in, pulumi.Map{"urls": in.URLs}); err != nil {
		return nil, fmt.Errorf("register ingress outputs: %w", err)
	}
	return in, nil
}

// newCertificateChain creates the issuers and certificates and returns the
// CA Certificate.
func newCertificateChain(ctx *pulumi.Context, parent pulumi.Resource, args *IngressArgs) (*apiextensions.CustomResource, error) {
	cfg := args.Config
	opts := []pulumi.ResourceOption{pulumi.Parent(parent)}
	if args.CertManagerReady != nil {
		opts = append(opts, pulumi.DependsOn([]pulumi.Resource{args.CertManagerReady}))
	}
	issuerRef := func(name, kind string) map[string]any {
		return map[string]any{"name": name, "kind": kind, "group": "cert-manager.io"}
	}
	ecdsa := map[string]any{"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}

	selfSigned, err := newCertManagerObject(ctx, "selfsigned-issuer", "ClusterIssuer", selfSignedIssuer, nil,
		map[string]any{"selfSigned": map[string]any{}}, nil, opts...)
	if err != nil {
		return nil, err
	}

	// The CA. Waiting for Ready lets the program read its Secret afterwards.
	var caAnnotations map[string]string
	if cfg.Ingress.ExportCA && !cfg.renderMode() {
		caAnnotations = map[string]string{"pulumi.com/waitFor": "condition=Ready"}
	}
	ca, err := newCertManagerObject(ctx, "ca-certificate", "Certificate", caName, args.Namespace, map[string]any{
		"isCA":       true,
		"commonName": "taskflow CA",
		"secretName": caName,
		"duration":   "87600h",
		"privateKey": ecdsa,
		"issuerRef":  issuerRef(selfSignedIssuer, "ClusterIssuer"),
	}, caAnnotations, append(opts, pulumi.DependsOn([]pulumi.Resource{selfSigned}))...)
	if err != nil {
		return nil, err
	}

	caIssuer, err := newCertManagerObject(ctx, "ca-issuer", "Issuer", caName, args.Namespace,
		map[string]any{"ca": map[string]any{"secretName": caName}}, nil,
		append(opts, pulumi.DependsOn([]pulumi.Resource{ca}))...)
	if err != nil {
		return nil, err
	}

	_, err = newCertManagerObject(ctx, "tls-certificate", "Certificate", tlsSecret, args.Namespace, map[string]any{
		"secretName":  tlsSecret,
		"dnsNames":    []any{cfg.Ingress.Host},
		"duration":    "2160h",
		"renewBefore": "360h",
		"privateKey":  ecdsa,
		"issuerRef":   issuerRef(caName, "Issuer"),
	}, nil, append(opts, pulumi.DependsOn([]pulumi.Resource{caIssuer}))...)
	if err != nil {
		return nil, err
	}
	return ca, nil
}

// newCertManagerObject creates a cert-manager.io/v1 object. A nil namespace
// makes a cluster-scoped object.
func newCertManagerObject(ctx *pulumi.Context, resourceName, kind, name string, namespace pulumi.StringInput,
	spec map[string]any, annotations map[string]string, opts ...pulumi.ResourceOption) (*apiextensions.CustomResource, error) {
	meta := &metav1.ObjectMetaArgs{
		Name:   pulumi.String(name),
		Labels: stringMap(podLabels(appName, "tls")),
	}
	if namespace != nil {
		meta.Namespace = namespace
	}
	if len(annotations) > 0 {
		meta.Annotations = stringMap(annotations)
	}
	obj, err := apiextensions.NewCustomResource(ctx, resourceName, &apiextensions.CustomResourceArgs{
		ApiVersion:  pulumi.String("cert-manager.io/v1"),
		Kind:        pulumi.String(kind),
		Metadata:    meta,
		OtherFields: kubernetes.UntypedArgs{"spec": spec},
	}, opts...)
	if err != nil {
		return nil, fmt.Errorf("create %s %s: %w", kind, name, err)
	}
	return obj, nil
}

// readCACertificate reads the CA certificate from the Secret that
// cert-manager wrote for the CA Certificate. The Secret's ID derives from
// the Certificate's ID, so a preview before the first `up` skips the read
// instead of failing on a Secret that does not exist yet.
func readCACertificate(ctx *pulumi.Context, parent pulumi.Resource, namespace pulumi.StringInput, ca *apiextensions.CustomResource) (pulumi.StringOutput, error) {
	id := pulumi.All(ca.ID(), namespace).ApplyT(func(v []any) pulumi.ID {
		return pulumi.ID(fmt.Sprintf("%s/%s", v[1], caName))
	}).(pulumi.IDOutput)
	secret, err := corev1.GetSecret(ctx, "ca-secret", id, nil, pulumi.Parent(parent), pulumi.DependsOn([]pulumi.Resource{ca}))
	if err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("read ca secret: %w", err)
	}
	pem := secret.Data.MapIndex(pulumi.String("tls.crt")).ApplyT(func(encoded string) (string, error) {
		raw, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil {
			return "", fmt.Errorf("decode ca certificate: %w", err)
		}
		return string(raw), nil
	}).(pulumi.StringOutput)
	// A CA certificate is public; only its key, which stays in the Secret, is not.
	return pulumi.Unsecret(pem).(pulumi.StringOutput), nil
}
