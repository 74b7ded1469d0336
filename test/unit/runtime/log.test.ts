import { createLog } from '../../../src/runtime/log';

describe('createLog', () => {
  const at = new Date('2024-05-01T12:00:00.000Z');

  it('writes one JSON line: time, level, msg, then the fields', () => {
    const out: string[] = [];
    const log = createLog({ write: (s: string) => out.push(s) }, 'info', () => at);
    log.info('ready', { cgroup: '/sys/fs/cgroup', exporter: 'otlp', n: 5n, error: Object.assign(new Error('nope'), { code: 'EPERM' }) });
    expect(out).toEqual([
      '{"time":"2024-05-01T12:00:00.000Z","level":"info","msg":"ready","cgroup":"/sys/fs/cgroup","exporter":"otlp","n":"5","error":{"message":"nope","code":"EPERM"}}\n',
    ]);
  });

  it('drops lines below the level, and a field cannot overwrite time, level or msg', () => {
    const out: string[] = [];
    const log = createLog({ write: (s: string) => out.push(s) }, 'warn', () => at);
    log.debug('d');
    log.info('i');
    log.warn('w', { msg: 'other', level: 'error', x: 1 });
    log.error('e', { error: new Error('plain') });
    expect(out.map((l) => JSON.parse(l))).toEqual([
      { time: '2024-05-01T12:00:00.000Z', level: 'warn', msg: 'w', x: 1 },
      { time: '2024-05-01T12:00:00.000Z', level: 'error', msg: 'e', error: 'plain' },
    ]);
    expect([log.enabled('info'), log.enabled('warn'), log.enabled('error')]).toEqual([false, true, true]);
  });
});
