// Command pulumi-smoke is a Pulumi program that creates one ConfigMap. The
// smoke check of scripts/cluster copies this module into a scratch directory
// and runs `pulumi up` and `pulumi destroy` on it against the local cluster,
// which exercises the CLI, the Go language host and the Kubernetes provider.
package main

import (
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		// The check reads the object back by this name, so Pulumi must not
		// append its random suffix.
		name := config.Get(ctx, "configMapName")
		if name == "" {
			name = "taskflow-smoke"
		}
		configMap, err := corev1.NewConfigMap(ctx, "smoke", &corev1.ConfigMapArgs{
			Metadata: &metav1.ObjectMetaArgs{
				Name:      pulumi.String(name),
				Namespace: pulumi.String("default"),
			},
			Data: pulumi.StringMap{"stack": pulumi.String(ctx.Stack())},
		})
		if err != nil {
			return err
		}
		ctx.Export("configMapName", configMap.Metadata.Name())
		return nil
	})
}
