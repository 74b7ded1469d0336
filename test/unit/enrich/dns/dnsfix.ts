/** Builders of DNS messages and DnsEvents for the DNS unit tests. */
import * as dnsPacket from 'dns-packet';
import type { DnsEvent } from '../../../../src/kernel/decode';

export function response(question: string, answers: dnsPacket.Answer[], rcode: string = 'NOERROR', qtype: 'A' | 'AAAA' = 'A', id = 1): Buffer {
  return dnsPacket.encode({
    type: 'response',
    id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (rcode === 'NXDOMAIN' ? 3 : 0),
    questions: [{ type: qtype, name: question, class: 'IN' }],
    answers,
  });
}

export function query(question: string, qtype: 'A' | 'AAAA' = 'A', id = 1): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: qtype, name: question, class: 'IN' }] });
}

/** The ends of one DNS exchange: a client socket inside the watched cgroup and its resolver. */
export interface Ends {
  client: string;
  clientPort: number;
  server: string;
  serverPort: number;
  tcp: boolean;
}

export const ENDS: Ends = { client: '198.18.0.1', clientPort: 40000, server: '198.18.0.53', serverPort: 53, tcp: false };

/** A response as the client's ingress hook sees it (from the server to the client). */
export function dnsEvent(data: Buffer, truncated = false, tsNs = 0n, ends: Ends = ENDS): DnsEvent {
  return {
    type: 'dns',
    tsNs,
    family: ends.client.includes(':') ? 6 : 4,
    cgroupId: 0n,
    srcAddr: ends.server,
    srcPort: ends.serverPort,
    dstAddr: ends.client,
    dstPort: ends.clientPort,
    msgLen: data.length,
    truncated,
    tcp: ends.tcp,
    egress: false,
    data,
  };
}

/** A query as the client's egress hook sees it (from the client to the server). */
export function queryEvent(data: Buffer, tsNs = 0n, ends: Ends = ENDS): DnsEvent {
  return { ...dnsEvent(data, false, tsNs, ends), srcAddr: ends.client, srcPort: ends.clientPort, dstAddr: ends.server, dstPort: ends.serverPort, egress: true };
}

/** The query a response answers: its ID and question, from the same ends. */
export function queryFor(responseBytes: Buffer, tsNs = 0n, ends: Ends = ENDS): DnsEvent {
  const r = dnsPacket.decode(responseBytes);
  return queryEvent(dnsPacket.encode({ type: 'query', id: r.id, flags: dnsPacket.RECURSION_DESIRED, questions: r.questions }), tsNs, ends);
}

/** Something that learns from DNS events (the cache). */
interface Observer {
  observe(event: DnsEvent, nowMs: number): void;
}

/** The query this response answers, then the response: an exchange the workload really made. */
export function observeAnswered(c: Observer, responseBytes: Buffer, nowMs: number, ends: Ends = ENDS, truncated = false): void {
  c.observe(queryFor(responseBytes, 0n, ends), nowMs);
  c.observe(dnsEvent(responseBytes, truncated, 0n, ends), nowMs);
}
