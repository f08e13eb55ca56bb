package main

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// Label keys and values shared by every object of the stack.
const (
	labelName      = "app.kubernetes.io/name"
	labelInstance  = "app.kubernetes.io/instance"
	labelPartOf    = "app.kubernetes.io/part-of"
	labelManagedBy = "app.kubernetes.io/managed-by"
	labelComponent = "app.kubernetes.io/component"

	appName = "taskflow"

	// roleLabel is the node label that separates stateful from stateless nodes.
	roleLabel     = "role"
	roleStateful  = "stateful"
	roleStateless = "stateless"

	// qosAnnotation records the QoS class a pod template is declared to get,
	// so a test or an operator can compare it with pod.status.qosClass.
	qosAnnotation = "taskflow.dev/qos-class"
)

// Component names. Each is the workload's object name, its Service name
// where it has one, and its app.kubernetes.io/name label.
const (
	componentPostgres = "postgres"
	componentRabbitMQ = "rabbitmq"
	componentWorker   = "worker"
	componentAPI      = "api"
	componentMonitor  = "monitor"
)

// selectorLabels returns the labels that select one component's pods. Every
// Deployment, StatefulSet, Service, PodDisruptionBudget and NetworkPolicy
// selects through this function, and podLabels contains its result, so a
// selector always matches its pods.
func selectorLabels(component string) map[string]string {
	return map[string]string{
		labelName:     component,
		labelInstance: appName,
	}
}

// podLabels returns the labels of a component's objects and pods: the
// selector labels plus descriptive ones that no selector uses.
func podLabels(component, tier string) map[string]string {
	labels := selectorLabels(component)
	labels[labelPartOf] = appName
	labels[labelManagedBy] = "pulumi"
	labels[labelComponent] = tier
	return labels
}

// stringMap converts labels into a Pulumi input.
func stringMap(labels map[string]string) pulumi.StringMap {
	out := pulumi.StringMap{}
	for k, v := range labels {
		out[k] = pulumi.String(v)
	}
	return out
}
