export { Registry } from './registry.js'
