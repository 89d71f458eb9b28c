// EventStoreDB protocol stand-in for tests (not EventStoreDB): the message and service definitions it speaks,
// taken from the ones @eventstore/db-client ships, so both ends of the wire use the same generated code.
// The generated modules are CommonJS whose exports Node cannot detect statically: default imports only.
import anyPb from 'google-protobuf/google/protobuf/any_pb.js';
import codePb from '@eventstore/db-client/generated/code_pb.js';
import emptyPb from 'google-protobuf/google/protobuf/empty_pb.js';
import gossipGrpc from '@eventstore/db-client/generated/gossip_grpc_pb.js';
import gossipPb from '@eventstore/db-client/generated/gossip_pb.js';
import persistentGrpc from '@eventstore/db-client/generated/persistent_grpc_pb.js';
import persistentPb from '@eventstore/db-client/generated/persistent_pb.js';
import serverFeaturesGrpc from '@eventstore/db-client/generated/serverfeatures_grpc_pb.js';
import serverFeaturesPb from '@eventstore/db-client/generated/serverfeatures_pb.js';
import sharedPb from '@eventstore/db-client/generated/shared_pb.js';
import statusPb from '@eventstore/db-client/generated/status_pb.js';
import streamsGrpc from '@eventstore/db-client/generated/streams_grpc_pb.js';
import streamsPb from '@eventstore/db-client/generated/streams_pb.js';

export {
  anyPb,
  codePb,
  emptyPb,
  gossipGrpc,
  gossipPb,
  persistentGrpc,
  persistentPb,
  serverFeaturesGrpc,
  serverFeaturesPb,
  sharedPb,
  statusPb,
  streamsGrpc,
  streamsPb,
};

/** The `Empty` of EventStoreDB's own shared.proto (most oneof markers use it). */
export const empty = (): InstanceType<typeof sharedPb.Empty> => new sharedPb.Empty();

/** The `google.protobuf.Empty` some newer messages (BatchAppendResp) use instead. */
export const googleEmpty = (): InstanceType<typeof emptyPb.Empty> => new emptyPb.Empty();

export const streamIdentifier = (name: string): InstanceType<typeof sharedPb.StreamIdentifier> => {
  const id = new sharedPb.StreamIdentifier();
  id.setStreamName(Buffer.from(name, 'utf8'));
  return id;
};

export const streamName = (id: InstanceType<typeof sharedPb.StreamIdentifier> | undefined): string =>
  id ? Buffer.from(id.getStreamName_asU8()).toString('utf8') : '';

/** Ids are answered as strings: every read and subscribe call of the client asks for `UUIDOption.string`. */
export const uuid = (value: string): InstanceType<typeof sharedPb.UUID> => {
  const id = new sharedPb.UUID();
  id.setString(value);
  return id;
};
