// GraphQL over websocket, the legacy subscriptions-transport-ws protocol (subprotocol
// "graphql-ws"): its SubscriptionServer and SubscriptionClient 0.11.0 on ws, loopback.
// Logs every websocket message both sides sent and received, as JSON lines:
// node graphql-legacy.js LOG PORT
'use strict';
const http = require('http');
const { WebSocket } = require('ws');
const { SubscriptionServer, SubscriptionClient } = require('subscriptions-transport-ws');
const { execute, subscribe, GraphQLSchema, GraphQLObjectType, GraphQLString, GraphQLInt } = require('graphql');
const wslog = require('./wslog');

const [logPath, port] = [process.argv[2], +process.argv[3] || 9108];
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
        subscribe: async function* (_, a) {
          for (let i = 1; i <= a.to; i++) { await new Promise((r) => setTimeout(r, 100)); yield { count: i }; }
        },
      },
    },
  }),
});

const server = http.createServer();
const subs = SubscriptionServer.create({ schema, execute, subscribe, keepAlive: 250 }, { server, path: '/graphql' });
subs.wsServer.on('connection', (ws) => L.hook('server', ws));

class LoggedWebSocket extends WebSocket {
  constructor(...a) { super(...a); L.hook('client', this); }
}
const run = (client, op) => new Promise((resolve) => {
  const results = [];
  client.request(op).subscribe({
    next: (r) => results.push(r),
    error: (e) => { results.push({ error: String(e.message || e) }); resolve(results); },
    complete: () => resolve(results),
  });
});

server.listen(port, '127.0.0.1', async () => {
  const client = new SubscriptionClient(`ws://127.0.0.1:${port}/graphql`,
    { reconnect: false, connectionParams: { token: 'abc' } }, LoggedWebSocket);
  const results = [];
  results.push(await run(client, { query: 'subscription OnCount($to: Int) { count(to: $to) }', variables: { to: 3 } }));
  results.push(await run(client, { query: 'query Hello($name: String) { hello(name: $name) }', variables: { name: 'wsdump' }, operationName: 'Hello' }));
  results.push(await run(client, { query: '{ nope }' }));
  // A subscription stopped by the client before it ends.
  const stop = client.request({ query: 'subscription Long { count(to: 100) }' }).subscribe({ next: (r) => results.push([r]) });
  await new Promise((r) => setTimeout(r, 350));
  stop.unsubscribe();
  await new Promise((r) => setTimeout(r, 300));
  L.log({ peer: 'client', results });
  client.close();
  await new Promise((r) => setTimeout(r, 300));
  L.close();
  server.close();
  process.exit(0);
});
