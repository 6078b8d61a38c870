// Whether Raftka's gRPC channels go through an HTTP proxy.
//
// grpc-js sends every channel through a CONNECT proxy named by `grpc_proxy`, and, when that is
// unset, by `https_proxy` or `http_proxy`. Those two are set machine-wide in many offices and
// clusters for web traffic; a Kafka client or broker never uses them, and neither does Raftka:
// a proxy meant for the web must not sit between brokers, or between a service and its brokers.
// `grpc_proxy` is still honoured, as the deliberate choice it is (the chaos suite uses it to put a
// fault-injecting proxy between nodes).

/** The channel option that applies the rule above to a channel created with this environment. */
export function grpcProxyChannelOption(env: Readonly<Record<string, string | undefined>> = process.env): { 'grpc.enable_http_proxy': 0 | 1 } {
  const explicit = env['grpc_proxy'];
  return { 'grpc.enable_http_proxy': explicit !== undefined && explicit !== '' ? 1 : 0 };
}
