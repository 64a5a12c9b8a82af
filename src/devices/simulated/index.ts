export { SimMotor, type SimMotorOptions } from './sim-motor.js'
export { SimDetector, type SimDetectorOptions } from './sim-detector.js'
