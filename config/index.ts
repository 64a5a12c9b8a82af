export { defaults, type Defaults } from './defaults.js'
