package worker

import "github.com/prometheus/client_golang/prometheus"

// metrics are the worker's Prometheus series.
type metrics struct {
	tasks    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	active   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, concurrency int) *metrics {
	m := &metrics{
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taskflow_worker_tasks_total",
			Help: "Deliveries handled, by task name and outcome: SUCCESS, RETRY, FAILURE, skipped " +
				"(already finished or revoked), discarded (finished elsewhere while running), " +
				"rejected (unreadable or unknown task) and poisoned (over the delivery limit).",
		}, []string{"task", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "taskflow_worker_task_duration_seconds",
			Help:    "Run time of task handlers, by task name.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 22),
		}, []string{"task"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "taskflow_worker_active_tasks",
			Help: "Tasks running now.",
		}),
	}
	slots := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "taskflow_worker_concurrency",
		Help: "Configured number of task slots.",
	})
	slots.Set(float64(concurrency))
	reg.MustRegister(m.tasks, m.duration, m.active, slots)
	return m
}

func (m *metrics) outcome(taskName, outcome string) {
	m.tasks.WithLabelValues(taskName, outcome).Inc()
}
