import t from 'tap'
import { createDynamoClients } from '../../shared/adapters/dynamo/client.js'
import { DynamoArchive } from '../../shared/adapters/dynamo/dynamo-archive.js'
import { startDynalite } from '../../shared/adapters/dynamo/embedded-dynamo.js'
import { ensureTable, tableName } from '../../shared/adapters/dynamo/table.js'

t.test('the archive probe behind /readyz and scrapes is one cached GetItem, never DescribeTable', async (t) => {
  const server = await startDynalite()
  t.teardown(server.close)
  const clients = createDynamoClients({ region: 'us-east-1', endpoint: server.endpoint })
  t.teardown(() => clients.client.destroy())
  const name = tableName('probe')
  await ensureTable(clients.client, name, { local: true })
  const sent: string[] = []
  clients.doc.middlewareStack.add((next, context) => async (args) => {
    sent.push(String(context.commandName))
    return await next(args)
  }, { step: 'initialize', name: 'recordCommands' })
  const archive = new DynamoArchive({ client: clients.doc, tableName: name })

  await Promise.all(Array.from({ length: 5 }, async () => await archive.ping()))
  for (let i = 0; i < 20; i++) await archive.ping()
  t.same(sent, ['GetItemCommand'], '25 pings, one data-plane read')
  t.notOk(sent.includes('DescribeTableCommand'), 'no control-plane call')

  await t.rejects(new DynamoArchive({ client: clients.doc, tableName: 'missing' }).ping(), { name: 'ResourceNotFoundException' }, 'a missing table still fails the probe')
})
