// Package broker talks to RabbitMQ with amqp091-go: one reconnecting connection per process, a
// publisher that waits for confirms, and the queue topology that workers declare.
//
// amqp091-go does not reconnect by itself. Conn replaces a closed connection on the next request
// for a channel, and every user of a channel (the outbox relay, the worker's consumer and its
// publisher) runs a loop that asks for a new channel with backoff once its old one closes.
// Delivery tags belong to a channel, so a message received on a channel that closed can no longer
// be acknowledged: RabbitMQ has already requeued it, and the worker acknowledges the redelivered
// copy after the reconnect.
package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/taskflow-dev/taskflow/app/internal/logging"
)

// dialTimeout bounds the TCP connect and AMQP handshake of one dial attempt; checkDialTimeout is
// the shorter bound a readiness check uses, to answer within a probe's timeout.
const (
	dialTimeout      = 5 * time.Second
	checkDialTimeout = time.Second
)

// Conn is an AMQP connection that is dialled on first use and again after it closes. It is safe
// for concurrent use. Close ends it for good.
type Conn struct {
	url  string
	name string
	log  *slog.Logger

	mu     sync.Mutex
	conn   *amqp.Connection
	closed bool
}

// NewConn returns a Conn for url. name is shown as the connection name in the RabbitMQ management
// UI. No connection is made until the first call that needs one.
func NewConn(url, name string, log *slog.Logger) *Conn {
	return &Conn{url: url, name: name, log: log}
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("broker connection closed")

// Channel opens a new channel, dialling first if there is no open connection. It makes one attempt
// and returns the error; callers retry with backoff. The caller closes the channel.
func (c *Conn) Channel() (*amqp.Channel, error) {
	conn, err := c.connection()
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	return ch, nil
}

// ErrReconnecting is returned by Check while another goroutine is dialling.
var ErrReconnecting = errors.New("reconnecting to the broker")

// Check reports whether the broker is reachable, for readiness probes, within about
// checkDialTimeout: it dials with that shorter timeout when there is no open connection, and
// returns ErrReconnecting at once when another goroutine is already dialling.
func (c *Conn) Check() error {
	if !c.mu.TryLock() {
		return ErrReconnecting
	}
	defer c.mu.Unlock()
	_, err := c.connectLocked(checkDialTimeout)
	return err
}

func (c *Conn) connection() (*amqp.Connection, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connectLocked(dialTimeout)
}

// connectLocked returns the open connection or dials a new one, giving the TCP connect and the
// AMQP handshake timeout each. c.mu must be held.
func (c *Conn) connectLocked(timeout time.Duration) (*amqp.Connection, error) {
	if c.closed {
		return nil, ErrClosed
	}
	if c.conn != nil && !c.conn.IsClosed() {
		return c.conn, nil
	}
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(c.name)
	conn, err := amqp.DialConfig(c.url, amqp.Config{
		Heartbeat:  10 * time.Second,
		Properties: props,
		// DefaultDial also bounds the handshake, so a server that accepts and then stalls does
		// not block the dial forever.
		Dial: amqp.DefaultDial(timeout),
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", logging.Redact(c.url), err)
	}
	if c.conn != nil {
		c.log.Info("reconnected to broker", "url", logging.SecretURL(c.url))
	} else {
		c.log.Info("connected to broker", "url", logging.SecretURL(c.url))
	}
	c.conn = conn
	return conn, nil
}

// ServerMajor returns the major version RabbitMQ reported for the current connection, or 0 when
// there is no connection or the version is not a number.
func (c *Conn) ServerMajor() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return 0
	}
	version, _ := c.conn.Properties["version"].(string)
	major, _, _ := strings.Cut(version, ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return 0
	}
	return n
}

// Close closes the connection, if any, and makes every later call fail with ErrClosed.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn == nil || c.conn.IsClosed() {
		return nil
	}
	return c.conn.Close()
}
