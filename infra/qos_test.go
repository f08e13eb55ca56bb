package main

import (
	"math/big"
	"testing"
)

func TestParseQuantity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want *big.Rat
	}{
		{"plain cores", "2", big.NewRat(2, 1)},
		{"millicores", "500m", big.NewRat(1, 2)},
		{"decimal cores", "0.5", big.NewRat(1, 2)},
		{"leading dot", ".25", big.NewRat(1, 4)},
		{"mebibytes", "512Mi", big.NewRat(512<<20, 1)},
		{"gibibytes", "2Gi", big.NewRat(2<<30, 1)},
		{"kibibytes", "64Ki", big.NewRat(64<<10, 1)},
		{"decimal gigabytes", "1G", big.NewRat(1_000_000_000, 1)},
		{"kilo", "3k", big.NewRat(3000, 1)},
		{"exponent", "1e3", big.NewRat(1000, 1)},
		{"negative exponent", "25e-2", big.NewRat(1, 4)},
		{"fractional binary", "1.5Gi", big.NewRat(3<<29, 1)},
		{"bytes", "134217728", big.NewRat(134217728, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseQuantity(tt.in)
			if err != nil {
				t.Fatalf("parseQuantity(%q): %v", tt.in, err)
			}
			if got.Cmp(tt.want) != 0 {
				t.Errorf("parseQuantity(%q) = %s, want %s", tt.in, got.RatString(), tt.want.RatString())
			}
		})
	}
}

func TestParseQuantityRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "abc", "1x", "Mi", "1.2.3", "1 Gi", "--1"} {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			if got, err := parseQuantity(in); err == nil {
				t.Errorf("parseQuantity(%q) = %s, want an error", in, got.RatString())
			}
		})
	}
}

func TestQoSClass(t *testing.T) {
	t.Parallel()
	both := func(cpu, mem string) ResourceList { return ResourceList{CPU: cpu, Memory: mem} }
	tests := []struct {
		name       string
		containers []Resources
		want       string
	}{
		{"no resources", []Resources{{}}, qosBestEffort},
		{"zero quantities count as unset", []Resources{{Requests: both("0", "0")}}, qosBestEffort},
		{"equal requests and limits", []Resources{{Requests: both("1", "2Gi"), Limits: both("1", "2Gi")}}, qosGuaranteed},
		{"equal in other units", []Resources{{Requests: both("1000m", "2048Mi"), Limits: both("1", "2Gi")}}, qosGuaranteed},
		{"limits only default the requests", []Resources{{Limits: both("500m", "1Gi")}}, qosGuaranteed},
		{"requests below limits", []Resources{{Requests: both("1", "2Gi"), Limits: both("2", "4Gi")}}, qosBurstable},
		{"requests only", []Resources{{Requests: both("500m", "512Mi")}}, qosBurstable},
		{"memory limit missing", []Resources{{Requests: both("1", "1Gi"), Limits: ResourceList{CPU: "1"}}}, qosBurstable},
		{"cpu request only", []Resources{{Requests: ResourceList{CPU: "100m"}}}, qosBurstable},
		{
			"one container without limits",
			[]Resources{{Requests: both("1", "1Gi"), Limits: both("1", "1Gi")}, {}},
			qosBurstable,
		},
		{
			"every container guaranteed",
			[]Resources{{Requests: both("1", "1Gi"), Limits: both("1", "1Gi")}, {Limits: both("250m", "256Mi")}},
			qosGuaranteed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := qosClass(tt.containers)
			if err != nil {
				t.Fatalf("qosClass: %v", err)
			}
			if got != tt.want {
				t.Errorf("qosClass = %s, want %s", got, tt.want)
			}
		})
	}
}
