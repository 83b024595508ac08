// A small canvas line plot of the pretraining history: loss and ME-MAX share
// the left scale; prototypes in use have their own (0 to K) on the right.

const COLORS = { loss: '#0969da', memax: '#bf3989', protos: '#1a7f37' };

export function createPlot(canvas) {
  const ctx = canvas.getContext('2d');
  let points = [];
  let maxProtos = 1;

  function draw() {
    const { width: W, height: H } = canvas;
    const pad = { l: 40, r: 36, t: 10, b: 22 };
    ctx.clearRect(0, 0, W, H);
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, W, H);
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#57606a';
    if (!points.length) {
      ctx.fillText('No pretraining yet: press Start in this section.', pad.l, H / 2);
      canvas.dataset.points = '0';
      return;
    }
    const first = points[0].step, last = points[points.length - 1].step;
    const span = Math.max(1, last - first);
    const lossMax = Math.max(1e-6, ...points.map((p) => Math.max(p.loss, p.memax))) * 1.1;
    const x = (s) => pad.l + ((s - first) / span) * (W - pad.l - pad.r);
    const yL = (v) => H - pad.b - (v / lossMax) * (H - pad.t - pad.b);
    const yP = (v) => H - pad.b - (v / maxProtos) * (H - pad.t - pad.b);
    ctx.strokeStyle = '#d0d7de';
    ctx.strokeRect(pad.l, pad.t, W - pad.l - pad.r, H - pad.t - pad.b);
    ctx.fillText(lossMax.toFixed(2), 2, pad.t + 8);
    ctx.fillText('0', pad.l - 12, H - pad.b);
    ctx.fillText(String(maxProtos), W - pad.r + 4, pad.t + 8);
    ctx.fillText(`step ${first}`, pad.l, H - 6);
    ctx.fillText(`step ${last}`, W - pad.r - 50, H - 6);
    const line = (key, y, color) => {
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      points.forEach((p, i) => (i ? ctx.lineTo(x(p.step), y(p[key])) : ctx.moveTo(x(p.step), y(p[key]))));
      if (points.length === 1) ctx.lineTo(x(points[0].step) + 3, y(points[0][key]));
      ctx.stroke();
    };
    line('loss', yL, COLORS.loss);
    line('memax', yL, COLORS.memax);
    line('protos', yP, COLORS.protos);
    canvas.dataset.points = String(points.length);
    canvas.dataset.lastStep = String(last);
  }

  return {
    /** All points ({ step, loss, memax, protos }), e.g. restored after a reload. */
    set(list, prototypes) {
      points = list.slice();
      maxProtos = prototypes || maxProtos;
      draw();
    },
    add(point) {
      points.push(point);
      draw();
    },
    get points() { return points; },
    draw,
  };
}
