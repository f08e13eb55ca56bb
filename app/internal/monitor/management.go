package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Management reads queue figures from the RabbitMQ management HTTP API. It is safe for concurrent
// use.
type Management struct {
	base     *url.URL // without credentials
	user     string
	password string
	vhost    string
	client   *http.Client
}

// managementTimeout bounds one management API request.
const managementTimeout = 5 * time.Second

// NewManagement returns a client for the management API at managementURL, such as
// http://user:password@rabbitmq:15672/. Credentials missing from managementURL are taken from
// amqpURL, and so is the vhost: the path of amqpURL, "/" when empty.
func NewManagement(managementURL, amqpURL string) (*Management, error) {
	base, err := url.Parse(managementURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("parse management URL: expected http(s)://user:password@host:port/")
	}
	amqp, err := url.Parse(amqpURL)
	if err != nil {
		return nil, fmt.Errorf("parse RabbitMQ URL: expected amqp://user:password@host:port/vhost")
	}
	m := &Management{vhost: "/", client: &http.Client{Timeout: managementTimeout}}
	for _, u := range []*url.URL{base, amqp} {
		if u.User != nil && m.user == "" {
			m.user = u.User.Username()
			m.password, _ = u.User.Password()
		}
	}
	if v := strings.TrimPrefix(amqp.Path, "/"); v != "" {
		m.vhost = v
	}
	base.User = nil
	base.Path = strings.TrimSuffix(base.Path, "/")
	base.RawPath = ""
	m.base = base
	return m, nil
}

// QueueStats are the figures of one queue.
type QueueStats struct {
	Name string `json:"name"`
	// Type is classic, quorum or stream.
	Type string `json:"type"`
	// State is running, idle, down or another RabbitMQ queue state.
	State     string `json:"state"`
	Messages  int64  `json:"messages"`
	Ready     int64  `json:"messages_ready"`
	Unacked   int64  `json:"messages_unacknowledged"`
	Consumers int    `json:"consumers"`
	// Rates are messages per second, averaged by RabbitMQ over its last sample interval.
	PublishRate float64 `json:"publish_rate"`
	DeliverRate float64 `json:"deliver_rate"`
	AckRate     float64 `json:"ack_rate"`
}

// managementQueue is the part of a queue object of GET /api/queues/{vhost} that the monitor reads.
type managementQueue struct {
	Name         string `json:"name"`
	Type         string `json:"type"`
	State        string `json:"state"`
	Messages     int64  `json:"messages"`
	Ready        int64  `json:"messages_ready"`
	Unacked      int64  `json:"messages_unacknowledged"`
	Consumers    int    `json:"consumers"`
	MessageStats struct {
		Publish    rateDetails `json:"publish_details"`
		DeliverGet rateDetails `json:"deliver_get_details"`
		Ack        rateDetails `json:"ack_details"`
	} `json:"message_stats"`
}

type rateDetails struct {
	Rate float64 `json:"rate"`
}

// queueColumns limits the response to the fields the monitor reads, which keeps it small on a
// broker with many queues.
const queueColumns = "name,type,state,messages,messages_ready,messages_unacknowledged,consumers," +
	"message_stats.publish_details.rate,message_stats.deliver_get_details.rate,message_stats.ack_details.rate"

// Queues returns the queues of the vhost whose names the keep function accepts, sorted by name.
// RabbitMQ samples the figures every few seconds (collect_statistics_interval, 5s by default), so
// they trail the real depth by up to that long.
func (m *Management) Queues(ctx context.Context, keep func(name string) bool) ([]QueueStats, error) {
	var raw []managementQueue
	path := "/api/queues/" + url.PathEscape(m.vhost) + "?columns=" + url.QueryEscape(queueColumns) + "&sort=name"
	if err := m.get(ctx, path, &raw); err != nil {
		return nil, err
	}
	out := make([]QueueStats, 0, len(raw))
	for _, q := range raw {
		if !keep(q.Name) {
			continue
		}
		out = append(out, QueueStats{
			Name: q.Name, Type: q.Type, State: q.State, Messages: q.Messages, Ready: q.Ready,
			Unacked: q.Unacked, Consumers: q.Consumers, PublishRate: q.MessageStats.Publish.Rate,
			DeliverRate: q.MessageStats.DeliverGet.Rate, AckRate: q.MessageStats.Ack.Rate,
		})
	}
	return out, nil
}

// get sends a GET request for path and decodes the JSON response into v.
func (m *Management) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.base.String()+path, nil)
	if err != nil {
		return fmt.Errorf("build management API request: %w", err)
	}
	req.SetBasicAuth(m.user, m.password)
	resp, err := m.client.Do(req)
	if err != nil {
		// The URL in the error has no credentials, because they travel in the header.
		return fmt.Errorf("query RabbitMQ management API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("query RabbitMQ management API %s: %s: %s", req.URL.Path, resp.Status, bytes.TrimSpace(msg))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode RabbitMQ management API response of %s: %w", req.URL.Path, err)
	}
	return nil
}
