package monitor

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSortQueuesByRoleAndDelay(t *testing.T) {
	t.Parallel()
	queue := func(name, kind string) QueueInfo {
		return QueueInfo{QueueStats: QueueStats{Name: name}, Kind: kind}
	}
	queues := []QueueInfo{
		queue("tasks.delay.11314ms", "delay"), queue("tasks.poison", "poison"), queue("tasks.delay.1000ms", "delay"),
		queue("tasks", "work"), queue("tasks.delay.2000ms", "delay"), queue("tasks.dlq", "dead_letter"),
	}
	sortQueues(queues)
	var got []string
	for _, q := range queues {
		got = append(got, q.Name)
	}
	want := []string{"tasks", "tasks.dlq", "tasks.poison", "tasks.delay.1000ms", "tasks.delay.2000ms", "tasks.delay.11314ms"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}
