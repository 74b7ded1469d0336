// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * empty.bpf.c — the yardstick for bench/kernel-cost.ts: cgroup_skb programs
 * that do nothing but allow the packet. Attached to the same cgroup as
 * flowtap's programs at the same time, they see the same packets, so their
 * run_time_ns/run_cnt is the floor (hook dispatch + bpf_stats' own clock
 * reads) that flowtap's cost is divided by.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define PASS 1

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup_skb/ingress")
int empty_ingress(struct __sk_buff *skb)
{
	return PASS;
}

SEC("cgroup_skb/egress")
int empty_egress(struct __sk_buff *skb)
{
	return PASS;
}
