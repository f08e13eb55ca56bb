package monitor

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskflow-dev/taskflow/app/internal/event"
)

// metrics are the monitor's Prometheus series. Worker, task-count and queue series are read from
// the registry and the latest snapshot at scrape time, so a forgotten worker or a deleted queue
// leaves the output with it.
type metrics struct {
	reg           prometheus.Registerer
	taskEvents    *prometheus.CounterVec
	runtime       *prometheus.HistogramVec
	badEvents     prometheus.Counter
	refreshErrors *prometheus.CounterVec
}

func newMetrics(m *Monitor, reg prometheus.Registerer) *metrics {
	mt := &metrics{
		reg: reg,
		taskEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taskflow_monitor_task_events_total",
			Help: "Task events received from workers, by event type and task name.",
		}, []string{"type", "task"}),
		runtime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "taskflow_monitor_task_runtime_seconds",
			Help:    "Handler run time of finished attempts (succeeded, failed or retried), by task name, from task events.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
		}, []string{"task"}),
		badEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "taskflow_monitor_unreadable_events_total",
			Help: "Events ignored because their body was not valid JSON of the expected shape.",
		}),
		refreshErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taskflow_monitor_refresh_errors_total",
			Help: "Failed snapshot refreshes, by source: postgres or rabbitmq (management API).",
		}, []string{"source"}),
	}
	streams := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "taskflow_monitor_event_streams",
		Help: "Open Server-Sent Event streams of dashboard pages.",
	}, func() float64 { return float64(m.hub.open()) })
	reg.MustRegister(mt.taskEvents, mt.runtime, mt.badEvents, mt.refreshErrors, streams, &collector{m: m})
	return mt
}

// register registers more collectors, such as the router's request counter.
func (mt *metrics) register(cs ...prometheus.Collector) {
	mt.reg.MustRegister(cs...)
}

// observeTask counts a task event and records the run time of a finished attempt.
func (mt *metrics) observeTask(t event.Task) {
	mt.taskEvents.WithLabelValues(t.Type, t.Task).Inc()
	switch t.Type {
	case event.TaskSucceeded, event.TaskFailed, event.TaskRetried:
		mt.runtime.WithLabelValues(t.Task).Observe(t.RuntimeMS / 1000)
	}
}

// Descriptions of the series the collector reads at scrape time.
var (
	descWorkersOnline = prometheus.NewDesc("taskflow_monitor_workers_online",
		"Workers that sent an event within their offline threshold.", nil, nil)
	descWorkers = prometheus.NewDesc("taskflow_monitor_workers",
		"Known workers by status (online or offline); offline workers are forgotten after WORKER_FORGET_AFTER.",
		[]string{"status"}, nil)
	descWorkerUp = prometheus.NewDesc("taskflow_monitor_worker_up",
		"1 while the worker is online, 0 while it is offline and not yet forgotten.", []string{"worker"}, nil)
	descWorkerActive = prometheus.NewDesc("taskflow_monitor_worker_active_tasks",
		"Tasks the worker is running, from its latest heartbeat.", []string{"worker"}, nil)
	descWorkerConcurrency = prometheus.NewDesc("taskflow_monitor_worker_concurrency",
		"Task slots of the worker.", []string{"worker"}, nil)
	descTasks = prometheus.NewDesc("taskflow_monitor_tasks",
		"Tasks in PostgreSQL by task name and state, as of the latest refresh.", []string{"task", "state"}, nil)
	descQueueMessages = prometheus.NewDesc("taskflow_monitor_queue_messages",
		"Messages in the queue (ready and unacknowledged), from the RabbitMQ management API.", []string{"queue"}, nil)
	descQueueReady = prometheus.NewDesc("taskflow_monitor_queue_messages_ready",
		"Messages ready for delivery in the queue.", []string{"queue"}, nil)
	descQueueConsumers = prometheus.NewDesc("taskflow_monitor_queue_consumers",
		"Consumers of the queue.", []string{"queue"}, nil)
	descQueuePaused = prometheus.NewDesc("taskflow_monitor_queue_paused",
		"1 while an operator has paused consumption of the queue.", []string{"queue"}, nil)
	descOldestWaiting = prometheus.NewDesc("taskflow_monitor_oldest_waiting_task_seconds",
		"How long the longest-waiting due task (PENDING or RETRY, ETA passed) has waited for a worker; "+
			"the age of the oldest message a worker has not taken yet.", nil, nil)
)

// collector reports the registry and the latest snapshot.
type collector struct {
	m *Monitor
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWorkersOnline, descWorkers, descWorkerUp, descWorkerActive,
		descWorkerConcurrency, descTasks, descQueueMessages, descQueueReady, descQueueConsumers,
		descQueuePaused, descOldestWaiting} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}

	workers := c.m.workers.Workers()
	online := 0
	for _, w := range workers {
		up := 0.0
		if w.Status == StatusOnline {
			online++
			up = 1
		}
		gauge(descWorkerUp, up, w.Name)
		gauge(descWorkerActive, float64(w.Active), w.Name)
		gauge(descWorkerConcurrency, float64(w.Concurrency), w.Name)
	}
	gauge(descWorkersOnline, float64(online))
	gauge(descWorkers, float64(online), StatusOnline)
	gauge(descWorkers, float64(len(workers)-online), StatusOffline)

	c.m.mu.Lock()
	s := c.m.snapshot
	c.m.mu.Unlock()
	if s == nil {
		return
	}
	for _, tc := range s.Counts {
		gauge(descTasks, float64(tc.Count), tc.Name, string(tc.State))
	}
	for _, q := range s.Queues {
		gauge(descQueueMessages, float64(q.Messages), q.Name)
		gauge(descQueueReady, float64(q.Ready), q.Name)
		gauge(descQueueConsumers, float64(q.Consumers), q.Name)
		paused := 0.0
		if q.Paused {
			paused = 1
		}
		gauge(descQueuePaused, paused, q.Name)
	}
	if s.DatabaseError == "" {
		gauge(descOldestWaiting, s.OldestWaiting.Seconds())
	}
}
