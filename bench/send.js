// Offered load on SendMessage at a fixed rate over the benchmark's conversations.
// Each text carries the send time, so the emulator's receive time gives end-to-end latency.
import grpc from 'k6/net/grpc';
import { check } from 'k6';
import { SharedArray } from 'k6/data';

const conversations = new SharedArray('conversations', () => JSON.parse(open(__ENV.CONVERSATIONS)));
const client = new grpc.Client();

export const options = {
  scenarios: {
    send: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE),
      timeUnit: '1s',
      duration: __ENV.DURATION || '30s',
      preAllocatedVUs: Number(__ENV.VUS || 50),
      maxVUs: 400,
    },
  },
  summaryTrendStats: ['p(50)', 'p(95)', 'p(99)', 'max'],
};

function uuidv4() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export default function () {
  if (__ITER === 0) client.connect(__ENV.TARGET, { plaintext: true, reflect: true });
  const c = conversations[(__VU * 7919 + __ITER) % conversations.length];
  const reply = client.invoke('chat4all.messaging.v1.MessageService/SendMessage', {
    request_id: uuidv4(),
    conversation_id: c.conversation_id,
    sender_user_id: c.sender_user_id,
    content: { text: `${__ENV.RUN} ${Date.now()}` },
  });
  check(reply, { accepted: (r) => r && r.status === grpc.StatusOK });
}
