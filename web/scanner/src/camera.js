// The device camera, read ~10 times a second into a canvas and decoded with jsQR.
import jsQR from "jsqr";

const FRAME_MS = 100;
// Decoding a smaller frame is faster and finds codes held at a normal distance just as well.
const MAX_SIDE = 800;

export class Camera {
  constructor(video, onCode) {
    this.video = video;
    this.onCode = onCode;
    this.stream = null;
    this.timer = null;
    this.canvas = document.createElement("canvas");
    this.ctx = this.canvas.getContext("2d", { willReadFrequently: true });
  }

  get running() {
    return this.stream !== null;
  }

  async start() {
    if (this.running) return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error("this browser gives no camera here (it needs https or localhost)");
    }
    this.stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    this.video.srcObject = this.stream;
    this.video.muted = true;
    this.video.playsInline = true;
    await this.video.play();
    this.timer = setInterval(() => this.tick(), FRAME_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    this.stream = null;
    this.video.srcObject = null;
  }

  tick() {
    const { videoWidth: w, videoHeight: h } = this.video;
    if (this.video.readyState < 2 || !w || !h) return;
    const scale = Math.min(1, MAX_SIDE / Math.max(w, h));
    const cw = Math.round(w * scale);
    const ch = Math.round(h * scale);
    if (this.canvas.width !== cw || this.canvas.height !== ch) {
      this.canvas.width = cw;
      this.canvas.height = ch;
    }
    this.ctx.drawImage(this.video, 0, 0, cw, ch);
    const frame = this.ctx.getImageData(0, 0, cw, ch);
    const found = jsQR(frame.data, cw, ch, { inversionAttempts: "dontInvert" });
    if (found && found.data) this.onCode(found.data);
  }
}
