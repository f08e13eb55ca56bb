package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// result is the final state of one submitted task.
type result struct {
	Label    string
	Expect   string
	Path     string          // the collection it was submitted to, such as /api/tasks
	ID       string          `json:"id"`
	State    string          `json:"state"`
	Attempts int             `json:"attempts"`
	Result   json.RawMessage `json:"result"`
	Error    *string         `json:"error"`
	// Tasks are those of a workflow; the report counts their attempts.
	Tasks []struct {
		Attempts int `json:"attempts"`
	} `json:"tasks"`
}

// attempts describes the attempts of the task, or of all tasks of the workflow: "1", or
// "4 in 4 tasks".
func (r result) attempts() string {
	if r.Tasks == nil {
		return strconv.Itoa(r.Attempts)
	}
	n := 0
	for _, t := range r.Tasks {
		n += t.Attempts
	}
	return fmt.Sprintf("%d in %d tasks", n, len(r.Tasks))
}

// Summary returns the result or the error, shortened to one table cell.
func (r result) Summary() string {
	text := string(r.Result)
	if r.Error != nil {
		text = "error: " + *r.Error
	}
	const width = 90
	if len(text) > width {
		text = text[:width-3] + "..."
	}
	return text
}

// batchTimeout bounds the wait for the whole batch.
const batchTimeout = 2 * time.Minute

// submitBatch posts every task and workflow of the embedded batch and polls until all have
// finished.
func submitBatch(ctx context.Context, apiURL string) ([]result, error) {
	var items []batchItem
	if err := json.Unmarshal(batchJSON, &items); err != nil {
		return nil, fmt.Errorf("decode embedded batch: %w", err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	results := make([]result, len(items))
	for i, item := range items {
		var r result
		if item.Path == "" {
			item.Path = "/api/tasks"
		}
		status, err := call(ctx, client, http.MethodPost, apiURL+item.Path, item.Body, &r)
		if err != nil {
			return nil, fmt.Errorf("submit %s: %w", item.Label, err)
		}
		if status != http.StatusAccepted {
			return nil, fmt.Errorf("submit %s: status %d, want 202", item.Label, status)
		}
		r.Label, r.Expect, r.Path = item.Label, item.Expect, item.Path
		results[i] = r
	}

	deadline := time.Now().Add(batchTimeout)
	for i := range results {
		for !finished(results[i].State) {
			if time.Now().After(deadline) {
				return results, fmt.Errorf("task %s (%s) is still %s after %s", results[i].ID, results[i].Label, results[i].State, batchTimeout)
			}
			select {
			case <-ctx.Done():
				return results, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			label, expect, path := results[i].Label, results[i].Expect, results[i].Path
			if _, err := call(ctx, client, http.MethodGet, apiURL+path+"/"+results[i].ID, nil, &results[i]); err != nil {
				return results, fmt.Errorf("poll %s: %w", label, err)
			}
			results[i].Label, results[i].Expect, results[i].Path = label, expect, path
		}
	}
	return results, nil
}

func finished(state string) bool {
	return state == "SUCCESS" || state == "FAILURE" || state == "REVOKED"
}

// unexpected returns an error naming the tasks that did not end in their expected state.
func unexpected(results []result) error {
	var errs []error
	for _, r := range results {
		if r.State != r.Expect {
			errs = append(errs, fmt.Errorf("task %s (%s) ended %s, expected %s", r.ID, r.Label, r.State, r.Expect))
		}
	}
	return errors.Join(errs...)
}

// call sends a JSON request and decodes the JSON response into out.
func call(ctx context.Context, client *http.Client, method, url string, body json.RawMessage, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.StatusCode, fmt.Errorf("decode %s: %w", data, err)
	}
	return resp.StatusCode, nil
}
