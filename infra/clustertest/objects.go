package clustertest

// The types below decode the fields the checks read from `kubectl get -o
// json`. They follow the Kubernetes API field names; every other field is
// ignored.

// Label and annotation keys that the infra program sets.
const (
	// labelName is app.kubernetes.io/name, the component of a pod.
	labelName = "app.kubernetes.io/name"
	// labelPartOf marks every object of the stack.
	labelPartOf = "app.kubernetes.io/part-of"
	// labelRole is the node role label: "stateful" or "stateless".
	labelRole = "role"
	// qosAnnotation is the pod annotation with the declared QoS class.
	qosAnnotation = "taskflow.dev/qos-class"
)

// list is a Kubernetes list of items of one kind.
type list[T any] struct {
	Items []T `json:"items"`
}

// objectMeta is the part of metadata the checks read.
type objectMeta struct {
	Name              string            `json:"name"`
	Namespace         string            `json:"namespace"`
	Labels            map[string]string `json:"labels"`
	Annotations       map[string]string `json:"annotations"`
	DeletionTimestamp string            `json:"deletionTimestamp"`
}

// condition is a status condition.
type condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// pod is a core/v1 Pod.
type pod struct {
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		NodeName          string      `json:"nodeName"`
		Priority          *int        `json:"priority"`
		PriorityClassName string      `json:"priorityClassName"`
		Containers        []container `json:"containers"`
	} `json:"spec"`
	Status struct {
		Phase      string      `json:"phase"`
		QOSClass   string      `json:"qosClass"`
		Conditions []condition `json:"conditions"`
	} `json:"status"`
}

// container is a container of a pod spec.
type container struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

// taint is a node taint.
type taint struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Effect string `json:"effect"`
}

// node is a core/v1 Node.
type node struct {
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		Taints []taint `json:"taints"`
	} `json:"spec"`
}

// persistentVolumeClaim is a core/v1 PersistentVolumeClaim.
type persistentVolumeClaim struct {
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		Resources struct {
			Requests map[string]string `json:"requests"`
		} `json:"resources"`
	} `json:"spec"`
	Status struct {
		Phase    string            `json:"phase"`
		Capacity map[string]string `json:"capacity"`
	} `json:"status"`
}

// topologySpreadConstraint is one entry of a pod spec's topologySpreadConstraints.
type topologySpreadConstraint struct {
	MaxSkew           int    `json:"maxSkew"`
	TopologyKey       string `json:"topologyKey"`
	WhenUnsatisfiable string `json:"whenUnsatisfiable"`
}

// workload is an apps/v1 Deployment or StatefulSet.
type workload struct {
	Kind     string     `json:"kind"`
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		Replicas *int `json:"replicas"`
		Template struct {
			Spec struct {
				Containers                []container                `json:"containers"`
				TopologySpreadConstraints []topologySpreadConstraint `json:"topologySpreadConstraints"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
	Status struct {
		Replicas      int `json:"replicas"`
		ReadyReplicas int `json:"readyReplicas"`
	} `json:"status"`
}

// event is a core/v1 Event.
type event struct {
	Type           string `json:"type"`
	Reason         string `json:"reason"`
	Message        string `json:"message"`
	InvolvedObject struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	} `json:"involvedObject"`
}

// ingress is a networking.k8s.io/v1 Ingress.
type ingress struct {
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		IngressClassName string `json:"ingressClassName"`
		Rules            []struct {
			Host string `json:"host"`
			HTTP struct {
				Paths []struct {
					Path     string `json:"path"`
					PathType string `json:"pathType"`
					Backend  struct {
						Service struct {
							Name string `json:"name"`
							Port struct {
								Number int `json:"number"`
							} `json:"port"`
						} `json:"service"`
					} `json:"backend"`
				} `json:"paths"`
			} `json:"http"`
		} `json:"rules"`
		TLS []struct {
			Hosts      []string `json:"hosts"`
			SecretName string   `json:"secretName"`
		} `json:"tls"`
	} `json:"spec"`
}

// secret is a core/v1 Secret. Its Data values are base64 encoded.
type secret struct {
	Metadata objectMeta        `json:"metadata"`
	Data     map[string]string `json:"data"`
}

// networkPolicy is a networking.k8s.io/v1 NetworkPolicy.
type networkPolicy struct {
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		PodSelector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"podSelector"`
	} `json:"spec"`
}
