/**
 * A small OTLP receiver for tests (no collector binary can be had here):
 * HTTP/protobuf on /v1/traces and /v1/metrics, and gRPC TraceService /
 * MetricsService, decoding with the official proto definitions that
 * @opentelemetry/otlp-transformer 0.52.1 ships as protobufjs code.
 */
import * as http from 'node:http';
import * as grpc from '@grpc/grpc-js';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const root = require('otlp-protos/build/src/generated/root') as { opentelemetry: { proto: Record<string, any> } };
const proto = root.opentelemetry.proto;
const TraceRequest = proto.collector.trace.v1.ExportTraceServiceRequest;
const TraceResponse = proto.collector.trace.v1.ExportTraceServiceResponse;
const MetricsRequest = proto.collector.metrics.v1.ExportMetricsServiceRequest;
const MetricsResponse = proto.collector.metrics.v1.ExportMetricsServiceResponse;

export interface Received {
  traces: any[];
  metrics: any[];
}

const asObject = (T: any, bytes: Buffer) => T.toObject(T.decode(bytes), { longs: String, enums: String, bytes: String, defaults: false, arrays: true });

export async function httpReceiver(): Promise<{ url: string; received: Received; close(): Promise<void> }> {
  const received: Received = { traces: [], metrics: [] };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url === '/v1/traces') received.traces.push(asObject(TraceRequest, body));
      else if (req.url === '/v1/metrics') received.metrics.push(asObject(MetricsRequest, body));
      else return res.writeHead(404).end();
      const reply = (req.url === '/v1/traces' ? TraceResponse : MetricsResponse).encode({}).finish();
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(Buffer.from(reply));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, received, close: () => new Promise((r) => server.close(() => r())) };
}

export async function grpcReceiver(): Promise<{ url: string; received: Received; close(): Promise<void> }> {
  const received: Received = { traces: [], metrics: [] };
  const server = new grpc.Server();
  const method = (path: string, Req: any, Res: any, into: any[]) => ({
    [path.split('/').pop()!]: {
      path,
      requestStream: false,
      responseStream: false,
      requestDeserialize: (b: Buffer) => asObject(Req, b),
      responseSerialize: (v: unknown) => Buffer.from(Res.encode(v).finish()),
    },
    handler: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      into.push(call.request);
      cb(null, {});
    },
  });
  const traces = method('/opentelemetry.proto.collector.trace.v1.TraceService/Export', TraceRequest, TraceResponse, received.traces);
  const metrics = method('/opentelemetry.proto.collector.metrics.v1.MetricsService/Export', MetricsRequest, MetricsResponse, received.metrics);
  server.addService({ Export: traces.Export as grpc.MethodDefinition<unknown, unknown> }, { Export: traces.handler });
  server.addService({ Export: metrics.Export as grpc.MethodDefinition<unknown, unknown> }, { Export: metrics.handler });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { url: `http://127.0.0.1:${port}`, received, close: async () => void server.forceShutdown() };
}

/** An attribute list ([{key, value: {stringValue|intValue|...}}]) as a plain object. */
export function attrs(list: Array<{ key: string; value: Record<string, unknown> }> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) out[key] = Object.values(value)[0];
  return out;
}
