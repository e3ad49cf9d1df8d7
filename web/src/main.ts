import { pulseMetrics } from './store/metrics.js'
import './components/pulse-app.js'

// Exists before the app starts, so tests and load tools can read it at any time.
pulseMetrics()
