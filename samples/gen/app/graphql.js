// GraphQL over websocket, subprotocol graphql-transport-ws: a graphql-ws 6 server (on ws)
// and a graphql-ws client on loopback. Logs every websocket message both sides sent and
// received, as JSON lines: node graphql.js LOG PORT
'use strict';
const { WebSocketServer, WebSocket } = require('ws');
const { useServer } = require('graphql-ws/use/ws');
const { createClient } = require('graphql-ws');
const { GraphQLSchema, GraphQLObjectType, GraphQLString, GraphQLInt } = require('graphql');
const wslog = require('./wslog');

const [logPath, port] = [process.argv[2], +process.argv[3] || 9103];
const L = wslog(logPath);

const schema = new GraphQLSchema({
  query: new GraphQLObjectType({
    name: 'Query',
    fields: {
      hello: { type: GraphQLString, args: { name: { type: GraphQLString } }, resolve: (_, a) => `hello ${a.name}` },
    },
  }),
  subscription: new GraphQLObjectType({
    name: 'Subscription',
    fields: {
      count: {
        type: GraphQLInt,
        args: { to: { type: GraphQLInt } },
        subscribe: async function* (_, a) { for (let i = 1; i <= a.to; i++) yield { count: i }; },
      },
    },
  }),
});

const wss = new WebSocketServer({ port, host: '127.0.0.1', path: '/graphql' });
wss.on('connection', (ws) => L.hook('server', ws));
useServer({ schema }, wss);

class LoggedWebSocket extends WebSocket {
  constructor(...a) { super(...a); L.hook('client', this); }
}

async function main() {
  const client = createClient({
    url: `ws://127.0.0.1:${port}/graphql`,
    webSocketImpl: LoggedWebSocket,
    keepAlive: 300,
    connectionParams: { token: 'abc' },
    lazy: false,
    retryAttempts: 0,
  });
  const results = [];
  for await (const r of client.iterate({
    query: 'subscription OnCount($to: Int) { count(to: $to) }',
    variables: { to: 3 },
  })) results.push(r);
  await new Promise((resolve, reject) => client.subscribe(
    { query: 'query Hello($name: String) { hello(name: $name) }', variables: { name: 'wsdump' }, operationName: 'Hello' },
    { next: (r) => results.push(r), error: reject, complete: resolve },
  ));
  await new Promise((resolve) => client.subscribe(
    { query: '{ nope }' },
    { next: (r) => results.push(r), error: (e) => { results.push({ error: String(e) }); resolve(); }, complete: resolve },
  ));
  // Let a few keep-alive pings pass.
  await new Promise((r) => setTimeout(r, 800));
  await client.dispose();
  await new Promise((r) => setTimeout(r, 300));
  L.log({ peer: 'client', results });
  L.close();
  wss.close();
  process.exit(0);
}
main().catch((e) => { console.error(e); process.exit(1); });
