/** Builders of DNS messages and DnsEvents for the DNS unit tests. */
import * as dnsPacket from 'dns-packet';
import type { DnsEvent } from '../../../../src/kernel/decode';

export function response(question: string, answers: dnsPacket.Answer[], rcode: string = 'NOERROR', qtype: 'A' | 'AAAA' = 'A'): Buffer {
  return dnsPacket.encode({
    type: 'response',
    id: 1,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (rcode === 'NXDOMAIN' ? 3 : 0),
    questions: [{ type: qtype, name: question, class: 'IN' }],
    answers,
  });
}

export function dnsEvent(data: Buffer, truncated = false): DnsEvent {
  return { type: 'dns', tsNs: 0n, family: 4, cgroupId: 0n, msgLen: data.length, truncated, tcp: false, egress: false, data };
}
