// EventStoreDB protocol stand-in for tests (not EventStoreDB): what the client asks before anything else.
// ServerFeatures tells it which calls exist (it then uses BatchAppend for appends); Gossip answers only
// `esdb+discover://` connection strings, with this single node as the leader.
import { randomUUID } from 'node:crypto';
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { gossipPb, persistentGrpc, serverFeaturesGrpc, serverFeaturesPb, streamsGrpc, gossipGrpc, uuid } from './pb.js';

const SERVER_VERSION = '24.10.0';

type MethodPath = { readonly path: string };

/** Feature flags as the server lists them for each implemented method. */
const supported: [MethodPath, string[]][] = [
  [streamsGrpc.StreamsService.read, ['position', 'events']],
  [streamsGrpc.StreamsService.append, []],
  [streamsGrpc.StreamsService.batchAppend, ['deadline_duration']],
  [persistentGrpc.PersistentSubscriptionsService.create, ['all']],
  [persistentGrpc.PersistentSubscriptionsService.update, ['all']],
  [persistentGrpc.PersistentSubscriptionsService.delete, ['all']],
  [persistentGrpc.PersistentSubscriptionsService.read, ['all']],
  [serverFeaturesGrpc.ServerFeaturesService.getSupportedMethods, []],
  [gossipGrpc.GossipService.read, []],
];

export const getSupportedMethods = (
  _call: ServerUnaryCall<unknown, unknown>,
  callback: sendUnaryData<InstanceType<typeof serverFeaturesPb.SupportedMethods>>,
): void => {
  const methods = new serverFeaturesPb.SupportedMethods();
  methods.setEventStoreServerVersion(SERVER_VERSION);
  for (const [method, features] of supported) {
    const [service = '', name = ''] = method.path.slice(1).split('/');
    const entry = new serverFeaturesPb.SupportedMethod();
    entry.setServiceName(service.toLowerCase());
    entry.setMethodName(name.toLowerCase());
    entry.setFeaturesList(features);
    methods.addMethods(entry);
  }
  callback(null, methods);
};

export const gossipRead =
  (endpoint: () => { host: string; port: number }, instanceId = randomUUID()) =>
  (
    _call: ServerUnaryCall<unknown, unknown>,
    callback: sendUnaryData<InstanceType<typeof gossipPb.ClusterInfo>>,
  ): void => {
    const { host, port } = endpoint();
    const member = new gossipPb.MemberInfo();
    member.setInstanceId(uuid(instanceId));
    member.setTimeStamp(String(BigInt(Date.now()) * 10_000n));
    member.setState(gossipPb.MemberInfo.VNodeState.LEADER);
    member.setIsAlive(true);
    member.setHttpEndPoint(new gossipPb.EndPoint().setAddress(host).setPort(port));
    callback(null, new gossipPb.ClusterInfo().setMembersList([member]));
  };
