import type { AnyValue, Attributes } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AttributeEncoder, LogsRequestFrame, ProtoWriter, varintSize } from '../../../../src/export/otlp/proto';
import { LogRecordEncoder } from './log-record-encoder';
import type { FlowRecord } from '../../../../src/record/record';
import { OBSERVED_NS, SCOPE, sdkBytes, variedFlowRecords } from '../../../helpers/flowrecords';

/** What the OTLP export queue sends for the same records. */
function ourBytes(records: FlowRecord[], resource = resourceFromAttributes({ 'service.name': 'flowtap', 'host.name': 'vm' })): Buffer {
  const frame = new LogsRequestFrame(resource, SCOPE);
  const w = new ProtoWriter(64);
  frame.open(w);
  frame.select(w, undefined);
  const enc = new LogRecordEncoder();
  for (const r of records) enc.encode(w, r, OBSERVED_NS);
  return Buffer.from(frame.frame(w));
}

describe('OTLP protobuf encoding', () => {
  it('writes, byte for byte, what the SDK serializer writes for the same flow records', () => {
    const records = variedFlowRecords();
    expect(ourBytes(records)).toEqual(Buffer.from(sdkBytes(records)));
  });

  it('matches for each record alone too (1-byte and 2-byte record lengths, small writer growing)', () => {
    for (const r of variedFlowRecords()) expect(ourBytes([r])).toEqual(Buffer.from(sdkBytes([r])));
  });

  it('matches for every AnyValue kind the SDK accepts, and a resource with a schema URL', () => {
    const resource = resourceFromAttributes(
      { 'service.name': 'x', 'a.bool': true, 'a.int': -5, 'a.big': 2 ** 40, 'a.double': 0.5 },
      { schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' },
    );
    const odd = {
      ...variedFlowRecords()[0],
      body: { nested: { list: [1, 'two', false, 2.5], bytes: new Uint8Array([0, 1, 255]) }, empty: '' } as unknown as AnyValue,
      attributes: {
        'b.true': true,
        'b.false': false,
        'i.negative': -1,
        'i.min32': -(2 ** 31),
        'i.big': 2 ** 53 - 1,
        'i.beyond64': 2 ** 64,
        'd.half': 0.5,
        'd.nan': NaN,
        's.empty': '',
        's.long': 'x'.repeat(300),
        's.unicode': 'añb€c𝄞',
        'a.empty': [],
        'a.mixed': ['a', 'b'],
        'a.numbers': [1, 2.5, -3],
      } as Attributes,
    } as FlowRecord;
    expect(ourBytes([odd], resource)).toEqual(Buffer.from(sdkBytes([odd], resource)));
  });

  it('matches for a record under 128 bytes (its reserved 2-byte length shrinks to 1)', () => {
    const tiny = { ...variedFlowRecords()[0], body: 'x', attributes: { k: 1 } } as FlowRecord;
    const bytes = ourBytes([tiny]);
    expect(bytes).toEqual(Buffer.from(sdkBytes([tiny])));
  });

  it('varint sizes and negative int64 varints', () => {
    expect([0, 127, 128, 16383, 16384, 2 ** 21, 2 ** 28, 2 ** 32 - 1].map(varintSize)).toEqual([1, 1, 2, 2, 3, 4, 5, 5]);
    const w = new ProtoWriter(1);
    w.varint(-1);
    expect([...w.view()]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    w.reset();
    w.varint(2 ** 35);
    expect([...w.view()]).toEqual([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
  });

  it('moves a length-delimited field when its length needs more bytes than reserved, or fewer', () => {
    const enc = new AttributeEncoder();
    const w = new ProtoWriter(4);
    enc.attributes(w, { k: 'v'.repeat(200) }, 0x32);
    // 32 <KeyValue: 209, 2 bytes> 0a 01 6b 12 <AnyValue: 203, 2 bytes> 0a <200, 2 bytes> v...
    expect([...w.view().subarray(0, 3)]).toEqual([0x32, 0xd1, 0x01]);
    expect(w.pos).toBe(1 + 2 + 209);
    expect([...w.view().subarray(6, 9)]).toEqual([0x12, 0xcb, 0x01]);
  });
});
