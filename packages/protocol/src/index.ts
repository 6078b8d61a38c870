// Public surface of @raftka/protocol: wire and disk formats shared by every package.
export * from './errors.js';
export * from './config.js';
export * from './record-batch/header.js';
export type { Logger } from './logger.js';
export type { Record, DecodedRecord, RecordHeader, RecordInput, RecordHeaderInput } from './record-batch/record.js';
export { RECORD_BYTES_MIN } from './record-batch/record.js';
export * from './record-batch/codec.js';
export * from './record-batch/batches.js';
export * from './record-batch/builder.js';
export { codecName, DECOMPRESSED_BYTES_MAX_DEFAULT, type SyncCompressionName } from './compression/index.js';
export { murmur2, toPositive, partitionForKey } from './murmur2.js';
export { ByteCursor, varintSize, varlongSize, writeVarint, writeVarlong, VARINT_BYTES_MAX, VARLONG_BYTES_MAX } from './varint.js';
export * from './topic-config.js';
export { grpcProxyChannelOption } from './grpc-proxy.js';
