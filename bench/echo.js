// Bare gRPC echo: as many unary calls as this machine's one Python server answers.
import grpc from 'k6/net/grpc';
import { check } from 'k6';

const client = new grpc.Client();

export const options = {
  scenarios: { echo: { executor: 'constant-vus', vus: 16, duration: __ENV.DURATION || '10s' } },
  summaryTrendStats: ['p(50)', 'p(95)', 'p(99)', 'max'],
};

export default function () {
  if (__ITER === 0) client.connect(__ENV.TARGET, { plaintext: true, reflect: true });
  const reply = client.invoke('grpc.health.v1.Health/Check', {});
  check(reply, { ok: (r) => r && r.status === grpc.StatusOK });
}
