/** Loading and validating YAML configs (devices, run metadata defaults, where data goes). */
export {
  loadConfigFile, parseConfig, createDevices, DATA_PROVIDERS, type FlyConfig, type CaConfig, type DataConfig, type DataProvider, type MetadataValue, type CreatedDevices,
  type SimConfig, type SimTriggerWire, type SimPandaConfig, type SimAdcConfig
} from './load.js'
export { defaultDeviceClasses, type DeviceClass, type DeviceClassTable, type DeviceEntry, type OptionType } from './device-classes.js'
