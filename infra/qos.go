package main

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

// qosClass returns the QoS class that Kubernetes assigns to a pod whose
// containers, init containers included, have these resources. It follows
// the rules of GetPodQOS in Kubernetes' pkg/apis/core/helper/qos:
//   - only CPU and memory count, and only quantities above zero;
//   - a limit without a request implies an equal request, as API defaulting does;
//   - no request and no limit anywhere is BestEffort;
//   - CPU and memory limits on every container, with the summed requests
//     equal to the summed limits, is Guaranteed;
//   - anything else is Burstable.
//
// It returns an error for a quantity it cannot parse.
func qosClass(containers []Resources) (string, error) {
	requests := map[string]*big.Rat{}
	limits := map[string]*big.Rat{}
	guaranteed := true

	for _, c := range containers {
		req, err := positiveQuantities(c.Requests)
		if err != nil {
			return "", fmt.Errorf("requests: %w", err)
		}
		lim, err := positiveQuantities(c.Limits)
		if err != nil {
			return "", fmt.Errorf("limits: %w", err)
		}
		for name, q := range lim {
			if _, ok := req[name]; !ok {
				req[name] = q
			}
		}
		if len(lim) != 2 {
			guaranteed = false
		}
		addQuantities(requests, req)
		addQuantities(limits, lim)
	}

	if len(requests) == 0 && len(limits) == 0 {
		return qosBestEffort, nil
	}
	if guaranteed && len(requests) == len(limits) {
		for name, q := range requests {
			l, ok := limits[name]
			if !ok || q.Cmp(l) != 0 {
				guaranteed = false
			}
		}
	} else {
		guaranteed = false
	}
	if guaranteed {
		return qosGuaranteed, nil
	}
	return qosBurstable, nil
}

// positiveQuantities parses the CPU and memory of a list and keeps those above zero.
func positiveQuantities(l ResourceList) (map[string]*big.Rat, error) {
	out := map[string]*big.Rat{}
	for name, s := range map[string]string{"cpu": l.CPU, "memory": l.Memory} {
		if s == "" {
			continue
		}
		q, err := parseQuantity(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if q.Sign() > 0 {
			out[name] = q
		}
	}
	return out, nil
}

func addQuantities(sum, add map[string]*big.Rat) {
	for name, q := range add {
		if sum[name] == nil {
			sum[name] = new(big.Rat)
		}
		sum[name].Add(sum[name], q)
	}
}

// quantityPattern matches a Kubernetes resource quantity: a signed decimal
// number followed by a binary suffix (Ki..Ei), a decimal suffix (n, u, m,
// k, M..E) or a decimal exponent (e3, E-2).
var quantityPattern = regexp.MustCompile(`^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$`)

// parseQuantity returns the exact value of a Kubernetes quantity such as
// "500m" (0.5) or "2Gi" (2147483648).
func parseQuantity(s string) (*big.Rat, error) {
	m := quantityPattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return nil, fmt.Errorf("invalid quantity %q: want a number with an optional suffix such as 500m or 2Gi", s)
	}
	value, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return nil, fmt.Errorf("invalid quantity %q", s)
	}

	suffix := m[2]
	binary := map[string]uint{"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
	decimal := map[string]int64{"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
	switch {
	case suffix == "":
		return value, nil
	case binary[suffix] > 0:
		return value.Mul(value, new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), binary[suffix]))), nil
	case decimal[suffix] != 0:
		return value.Mul(value, powerOfTen(decimal[suffix])), nil
	default:
		var exp int64
		if _, err := fmt.Sscanf(suffix[1:], "%d", &exp); err != nil {
			return nil, fmt.Errorf("invalid quantity %q: %w", s, err)
		}
		return value.Mul(value, powerOfTen(exp)), nil
	}
}

func powerOfTen(exp int64) *big.Rat {
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(abs(exp)), nil)
	if exp < 0 {
		return new(big.Rat).SetFrac(big.NewInt(1), p)
	}
	return new(big.Rat).SetInt(p)
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
