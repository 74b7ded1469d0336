import type { FlowEvent } from '../../../src/kernel/decode';
import { flowBody, hostPort, mapFlow } from '../../../src/record/record';

const outgoing4: FlowEvent = {
  type: 'begin',
  tsNs: 10n,
  family: 4,
  direction: 'outgoing',
  srcAddr: '10.0.0.5',
  srcPort: 43512,
  dstAddr: '93.184.216.34',
  dstPort: 443,
  cgroupId: 7n,
  closeReason: undefined,
  closedBy: undefined,
  beginTsNs: undefined,
};

const incoming6: FlowEvent = {
  ...outgoing4,
  family: 6,
  direction: 'incoming',
  srcAddr: 'fd00::2',
  srcPort: 50000,
  dstAddr: 'fd00::1',
  dstPort: 8080,
};

const WALL = 1_714_564_800_123_456_789n;

describe('mapFlow', () => {
  it('maps an outgoing IPv4 begin with a known destination name, every attribute', () => {
    const r = mapFlow(outgoing4, { src: [], dst: ['example.com', 'edge.example.net'] }, WALL);
    expect(r.eventName).toBe('flowtap.flow.begin');
    expect(r.timestampNs).toBe(WALL);
    expect(r.severityNumber).toBe(9);
    expect(r.body).toBe('outgoing tcp 10.0.0.5:43512 -> 93.184.216.34:443 (example.com)');
    expect(r.attributes).toStrictEqual({
      'flowtap.flow.direction': 'outgoing',
      'source.address': '10.0.0.5',
      'source.port': 43512,
      'destination.address': '93.184.216.34',
      'destination.port': 443,
      'flowtap.flow.source.domains': [],
      'flowtap.flow.destination.domains': ['example.com', 'edge.example.net'],
      'client.address': '10.0.0.5',
      'client.port': 43512,
      'server.address': 'example.com',
      'server.port': 443,
      'network.transport': 'tcp',
      'network.type': 'ipv4',
      'network.local.address': '10.0.0.5',
      'network.local.port': 43512,
      'network.peer.address': '93.184.216.34',
      'network.peer.port': 443,
    });
  });

  it('maps an incoming IPv6 begin without names: server is the responder IP, local is the destination', () => {
    const r = mapFlow(incoming6, { src: [], dst: [] }, WALL);
    expect(r.body).toBe('incoming tcp [fd00::2]:50000 -> [fd00::1]:8080');
    expect(r.attributes).toStrictEqual({
      'flowtap.flow.direction': 'incoming',
      'source.address': 'fd00::2',
      'source.port': 50000,
      'destination.address': 'fd00::1',
      'destination.port': 8080,
      'flowtap.flow.source.domains': [],
      'flowtap.flow.destination.domains': [],
      'client.address': 'fd00::2',
      'client.port': 50000,
      'server.address': 'fd00::1',
      'server.port': 8080,
      'network.transport': 'tcp',
      'network.type': 'ipv6',
      'network.local.address': 'fd00::1',
      'network.local.port': 8080,
      'network.peer.address': 'fd00::2',
      'network.peer.port': 50000,
    });
  });

  it('puts source names in flowtap.flow.source.domains only', () => {
    const r = mapFlow(incoming6, { src: ['client.test'], dst: [] }, WALL);
    expect(r.attributes['flowtap.flow.source.domains']).toEqual(['client.test']);
    expect(r.attributes['server.address']).toBe('fd00::1');
    expect(r.body).toBe('incoming tcp [fd00::2]:50000 -> [fd00::1]:8080');
  });

  it('maps an outgoing IPv6 begin with a name', () => {
    const r = mapFlow({ ...incoming6, direction: 'outgoing' }, { src: [], dst: ['svc.test'] }, WALL);
    expect(r.body).toBe('outgoing tcp [fd00::2]:50000 -> [fd00::1]:8080 (svc.test)');
    expect(r.attributes['server.address']).toBe('svc.test');
    expect(r.attributes['network.local.address']).toBe('fd00::2');
    expect(r.attributes['network.local.port']).toBe(50000);
    expect(r.attributes['network.peer.address']).toBe('fd00::1');
    expect(r.attributes['network.peer.port']).toBe(8080);
  });

  it('maps an incoming IPv4 begin', () => {
    const r = mapFlow({ ...outgoing4, direction: 'incoming' }, { src: [], dst: [] }, WALL);
    expect(r.body).toBe('incoming tcp 10.0.0.5:43512 -> 93.184.216.34:443');
    expect(r.attributes['network.local.address']).toBe('93.184.216.34');
    expect(r.attributes['network.peer.port']).toBe(43512);
    expect(r.attributes['client.address']).toBe('10.0.0.5');
  });

  it('maps a flow end: same orientation plus duration, close reason and closer', () => {
    const end: FlowEvent = {
      ...outgoing4,
      type: 'end',
      tsNs: 3_250_000_000n,
      beginTsNs: 1_000_000_000n,
      closeReason: 'rst',
      closedBy: 'destination',
    };
    const r = mapFlow(end, { src: [], dst: ['example.com'] }, WALL);
    expect(r.eventName).toBe('flowtap.flow.end');
    expect(r.body).toBe('outgoing tcp 10.0.0.5:43512 -> 93.184.216.34:443 (example.com)');
    expect(r.attributes['flowtap.flow.duration']).toBe(2.25);
    expect(r.attributes['flowtap.flow.close_reason']).toBe('rst');
    expect(r.attributes['flowtap.flow.closed_by']).toBe('destination');
    expect(r.attributes['server.address']).toBe('example.com');
    expect(Object.keys(r.attributes)).toHaveLength(20);
  });

  it('leaves the duration out when the begin time is unknown', () => {
    const r = mapFlow({ ...outgoing4, type: 'end', beginTsNs: 0n, closeReason: 'fin', closedBy: 'source' }, { src: [], dst: [] }, WALL);
    expect(r.attributes).not.toHaveProperty('flowtap.flow.duration');
    expect(r.attributes['flowtap.flow.close_reason']).toBe('fin');
    expect(r.attributes['flowtap.flow.closed_by']).toBe('source');
  });

  it('writes no end attributes on a begin', () => {
    const r = mapFlow(outgoing4, { src: [], dst: [] }, WALL);
    expect(Object.keys(r.attributes).filter((k) => k.startsWith('flowtap.flow.') && !k.endsWith('domains'))).toEqual(['flowtap.flow.direction']);
  });
});

describe('flowBody / hostPort', () => {
  it('brackets IPv6 hosts only', () => {
    expect(hostPort('10.0.0.1', 80)).toBe('10.0.0.1:80');
    expect(hostPort('::1', 80)).toBe('[::1]:80');
  });

  it('adds the name only when given', () => {
    expect(flowBody(outgoing4, undefined)).toBe('outgoing tcp 10.0.0.5:43512 -> 93.184.216.34:443');
    expect(flowBody(outgoing4, 'a.test')).toBe('outgoing tcp 10.0.0.5:43512 -> 93.184.216.34:443 (a.test)');
  });
});
