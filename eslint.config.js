import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', 'web/dist/**', '.tap/**', 'load-tests/k6/**'] })
]
