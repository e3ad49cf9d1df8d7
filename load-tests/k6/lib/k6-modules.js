// The one place that names k6's experimental modules. k6 0.48-0.49 need these paths;
// on k6 >= 0.50 the timers also live in 'k6/timers' (and are global from 0.51), and on
// k6 >= 0.54 the WebSocket API is 'k6/websockets'. Change the two lines below to move on.
export { WebSocket } from 'k6/experimental/websockets'
export { setTimeout, clearTimeout, setInterval, clearInterval } from 'k6/experimental/timers'
