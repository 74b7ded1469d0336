import { loadConfig } from '../../../src/config/config';
import { destination, healthListenFailure, readyFields } from '../../../src/runtime/ready';

const MOUNTINFO = '29 24 0:26 / /sys/fs/cgroup rw,relatime shared:9 - cgroup2 cgroup2 rw\n';

describe('readyFields', () => {
  it('shows the endpoints without their credentials', () => {
    const { config } = loadConfig(
      ['--endpoint', 'https://user:pa55@collector:4317'],
      { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:t0k@metrics:4317' },
      MOUNTINFO,
    );
    const fields = readyFields(config, '1.2.3', undefined, 3, undefined);
    expect(fields.cgroupProcesses).toBe(3);
    expect(fields.endpoint).toBe('https://***@collector:4317');
    expect(fields.metrics).toBe('http://***@metrics:4317');
    expect(JSON.stringify(fields)).not.toMatch(/pa55|t0k/);
    expect(destination(config)).toBe('https://***@collector:4317');
  });

  it('leaves an endpoint without credentials as it is', () => {
    const { config } = loadConfig([], {}, MOUNTINFO);
    expect(readyFields(config, '1.2.3', '127.0.0.1:1', undefined, undefined).endpoint).toBe('http://localhost:4317');
    expect(destination({ exporter: 'console', endpoint: 'http://a:b@x' })).toBe('console');
  });
});

describe('healthListenFailure', () => {
  it('names the flag or the variable the address came from', () => {
    const busy = Object.assign(new Error('listen EADDRINUSE: address already in use'), { code: 'EADDRINUSE' });
    const fromEnv = loadConfig([], { FLOWTAP_HEALTH_ADDRESS: '127.0.0.1:8080' }, MOUNTINFO);
    expect(healthListenFailure(busy, fromEnv.config, fromEnv.sources)).toEqual({
      exitCode: 2,
      message: 'FLOWTAP_HEALTH_ADDRESS 127.0.0.1:8080: listen EADDRINUSE: address already in use',
    });
    const fromFlag = loadConfig(['--health-address', ':80'], {}, MOUNTINFO);
    const denied = Object.assign(new Error('listen EACCES: permission denied'), { code: 'EACCES' });
    expect(healthListenFailure(denied, fromFlag.config, fromFlag.sources)).toEqual({
      exitCode: 1,
      message: '--health-address :80: listen EACCES: permission denied: ports below 1024 need CAP_NET_BIND_SERVICE',
    });
  });
});
