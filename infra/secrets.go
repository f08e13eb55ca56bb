package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Kubernetes Secret names and keys that the workloads reference.
const (
	secretPostgres = "postgres-credentials"
	secretRabbitMQ = "rabbitmq-credentials"
	secretCookie   = "rabbitmq-erlang-cookie"
	secretTokens   = "app-tokens"

	keyUsername       = "username"
	keyPassword       = "password"
	keyDatabase       = "database"
	keyDatabaseURL    = "database-url"
	keyAMQPURL        = "amqp-url"
	keyManagementURL  = "management-url"
	keyKEDAHost       = "keda-host"
	keyDefaultUserCnf = "default_user.conf"
	keyCookie         = "cookie"
	keyAPIToken       = "api-token"
	keyMonitorRead    = "monitor-read-token"
	keyMonitorAdmin   = "monitor-admin-token"
)

// secretNames returns the names of the generated credentials. Each is
// derived from the stack's secret seed unless a secret config key of the
// same name sets it.
func secretNames() []string {
	return []string{
		"postgresPassword",
		"rabbitmqPassword",
		"erlangCookie",
		"apiToken",
		"monitorReadToken",
		"monitorAdminToken",
	}
}

// SecretsArgs configures the Secrets component.
type SecretsArgs struct {
	// Namespace receives the Secrets.
	Namespace pulumi.StringInput
	// Config supplies user names, the database name, the seed and overrides.
	Config Config
}

// Secrets creates every credential of the stack as Kubernetes Secrets. The
// values are derived from the stack's secret seed, so they stay the same
// across `pulumi up` runs, and they travel only as secret outputs: Pulumi
// encrypts them in the state, and pods read them through secretKeyRef.
type Secrets struct {
	pulumi.ResourceState

	// PostgresPassword is the database owner's password.
	PostgresPassword pulumi.StringOutput
	// RabbitMQPassword is the broker's default user's password.
	RabbitMQPassword pulumi.StringOutput
	// DatabaseURL is the URL the services connect with.
	DatabaseURL pulumi.StringOutput
	// KEDAHost is the management API address KEDA reads the queue from.
	KEDAHost pulumi.StringOutput
}

// NewSecrets registers the Secrets component and its Secret objects.
func NewSecrets(ctx *pulumi.Context, name string, args *SecretsArgs, opts ...pulumi.ResourceOption) (*Secrets, error) {
	s := &Secrets{}
	if err := ctx.RegisterComponentResource("taskflow:infra:Secrets", name, s, opts...); err != nil {
		return nil, fmt.Errorf("register secrets component: %w", err)
	}
	cfg := args.Config
	value := func(n string) pulumi.StringOutput { return secretValue(cfg.Secrets, n) }

	// Credentials and the URLs built from them. url.UserPassword
	// percent-encodes user information, so an overridden password with
	// reserved characters still yields a valid URL.
	s.PostgresPassword = value("postgresPassword")
	s.RabbitMQPassword = value("rabbitmqPassword").ApplyT(func(pw string) (string, error) {
		return pw, validateRabbitMQPassword(pw)
	}).(pulumi.StringOutput)
	s.DatabaseURL = s.PostgresPassword.ApplyT(func(pw string) string {
		u := url.URL{
			Scheme:   "postgres",
			User:     url.UserPassword(cfg.Postgres.Username, pw),
			Host:     fmt.Sprintf("%s:%d", componentPostgres, portPostgres),
			Path:     "/" + cfg.Postgres.Database,
			RawQuery: "sslmode=disable",
		}
		return u.String()
	}).(pulumi.StringOutput)
	amqpURL := s.RabbitMQPassword.ApplyT(func(pw string) string {
		u := url.URL{Scheme: "amqp", User: url.UserPassword(cfg.RabbitMQ.Username, pw), Host: fmt.Sprintf("%s:%d", componentRabbitMQ, portAMQP)}
		// The default vhost "/" is written encoded, as the AMQP URI spec requires.
		return u.String() + "/%2F"
	}).(pulumi.StringOutput)
	managementURL := s.RabbitMQPassword.ApplyT(func(pw string) string {
		u := url.URL{Scheme: "http", User: url.UserPassword(cfg.RabbitMQ.Username, pw), Host: fmt.Sprintf("%s:%d", componentRabbitMQ, portManagement)}
		return u.String()
	}).(pulumi.StringOutput)
	// KEDA runs in its own namespace, so it needs the Service's full name.
	// The credentials go to KEDA as separate parameters, which keeps the
	// host free of characters that would need encoding.
	s.KEDAHost = pulumi.Sprintf("http://%s.%s.svc.cluster.local:%d/%%2F", componentRabbitMQ, args.Namespace, portManagement)
	defaultUserConf := s.RabbitMQPassword.ApplyT(func(pw string) string {
		return fmt.Sprintf("default_user = %s\ndefault_pass = %s\n", cfg.RabbitMQ.Username, pw)
	}).(pulumi.StringOutput)

	// The Secret objects.
	objects := []struct {
		name string
		data pulumi.StringMap
	}{
		{secretPostgres, pulumi.StringMap{
			keyUsername:    pulumi.String(cfg.Postgres.Username),
			keyPassword:    s.PostgresPassword,
			keyDatabase:    pulumi.String(cfg.Postgres.Database),
			keyDatabaseURL: s.DatabaseURL,
		}},
		{secretRabbitMQ, pulumi.StringMap{
			keyUsername:       pulumi.String(cfg.RabbitMQ.Username),
			keyPassword:       s.RabbitMQPassword,
			keyAMQPURL:        amqpURL,
			keyManagementURL:  managementURL,
			keyKEDAHost:       s.KEDAHost,
			keyDefaultUserCnf: defaultUserConf,
		}},
		{secretCookie, pulumi.StringMap{
			keyCookie: value("erlangCookie"),
		}},
		{secretTokens, pulumi.StringMap{
			keyAPIToken:     value("apiToken"),
			keyMonitorRead:  value("monitorReadToken"),
			keyMonitorAdmin: value("monitorAdminToken"),
		}},
	}
	for _, o := range objects {
		_, err := corev1.NewSecret(ctx, o.name, &corev1.SecretArgs{
			Metadata: &metav1.ObjectMetaArgs{
				Name:      pulumi.String(o.name),
				Namespace: args.Namespace,
				Labels:    stringMap(podLabels(appName, "credentials")),
			},
			Type: pulumi.String("Opaque"),
			// ToSecret marks the whole map, so even the plain user names
			// stay encrypted alongside the passwords.
			StringData: pulumi.ToSecret(o.data).(pulumi.StringMapOutput),
		}, pulumi.Parent(s))
		if err != nil {
			return nil, fmt.Errorf("create secret %s: %w", o.name, err)
		}
	}

	if err := ctx.RegisterResourceOutputs(s, pulumi.Map{
		"postgresSecret": pulumi.String(secretPostgres),
		"rabbitmqSecret": pulumi.String(secretRabbitMQ),
	}); err != nil {
		return nil, fmt.Errorf("register secrets outputs: %w", err)
	}
	return s, nil
}

// secretValue returns the override for name when the stack sets one, and
// otherwise a value derived from the seed. Both are secret outputs.
func secretValue(cfg SecretsConfig, name string) pulumi.StringOutput {
	if v, ok := cfg.Overrides[name]; ok {
		return pulumi.ToSecret(v).(pulumi.StringOutput)
	}
	return pulumi.ToSecret(cfg.Seed.ApplyT(func(seed string) string {
		return deriveSecret(seed, name)
	})).(pulumi.StringOutput)
}

// deriveSecret returns HMAC-SHA256(seed, name) in unpadded base64url: 43
// characters from [A-Za-z0-9_-], which need no escaping in URLs, in
// rabbitmq.conf or in shell. The same seed and name always give the same value.
func deriveSecret(seed, name string) string {
	mac := hmac.New(sha256.New, []byte(seed))
	mac.Write([]byte("taskflow/" + name))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// validateRabbitMQPassword rejects a password that rabbitmq.conf cannot
// carry: its parser ends a value at a line break or at "#", and trims
// surrounding whitespace.
func validateRabbitMQPassword(pw string) error {
	switch {
	case pw == "":
		return fmt.Errorf("rabbitmqPassword is empty")
	case strings.ContainsAny(pw, "#\r\n"):
		return fmt.Errorf("rabbitmqPassword contains '#' or a line break, which rabbitmq.conf cannot carry: choose another password")
	case strings.TrimSpace(pw) != pw:
		return fmt.Errorf("rabbitmqPassword starts or ends with whitespace, which rabbitmq.conf trims: choose another password")
	}
	return nil
}
