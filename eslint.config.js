import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', 'web/dist/**', 'web/client/dist/**', '.tap/**', 'load-tests/k6/**'] })
]
