// The microphone as 16 kHz mono float32 samples: getUserMedia into an AudioContext running at 16 kHz
// (the browser resamples the microphone), an AudioWorklet that copies each 128-frame block out, and
// blocks gathered into half-second buffers for the kernel.
const TAP = `class Tap extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) this.port.postMessage(channel.slice(0));
    return true;
  }
}
registerProcessor("al-pcm-tap", Tap);`;

export const SAMPLE_RATE = 16000;
const SEND_FRAMES = SAMPLE_RATE / 2;

export class Microphone {
  private context: AudioContext | null = null;
  private stream: MediaStream | null = null;
  private blocks: Float32Array[] = [];
  private frames = 0;

  constructor(private readonly send: (samples: Float32Array) => void) {}

  async start(): Promise<void> {
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new Error("this page cannot use a microphone (it needs https or localhost)");
    }
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
    this.context = new AudioContext({ sampleRate: SAMPLE_RATE });
    const url = URL.createObjectURL(new Blob([TAP], { type: "text/javascript" }));
    try {
      await this.context.audioWorklet.addModule(url);
    } finally {
      URL.revokeObjectURL(url);
    }
    const tap = new AudioWorkletNode(this.context, "al-pcm-tap");
    tap.port.onmessage = (event: MessageEvent<Float32Array>) => this.take(event.data);
    this.context.createMediaStreamSource(this.stream).connect(tap);
    tap.connect(this.context.destination); // the tap outputs silence; connected, the graph pulls it
  }

  private take(block: Float32Array): void {
    this.blocks.push(block);
    this.frames += block.length;
    if (this.frames >= SEND_FRAMES) this.flush();
  }

  private flush(): void {
    if (this.frames === 0) return;
    const samples = new Float32Array(this.frames);
    let offset = 0;
    this.blocks.forEach((block) => {
      samples.set(block, offset);
      offset += block.length;
    });
    this.blocks = [];
    this.frames = 0;
    this.send(samples);
  }

  async stop(): Promise<void> {
    this.stream?.getTracks().forEach((track) => track.stop());
    await this.context?.close();
    this.flush();
    this.stream = null;
    this.context = null;
  }
}

/** A file's audio (any format the browser decodes) as 16 kHz mono samples, resampled by Web Audio. */
export async function decodeTo16k(data: ArrayBuffer): Promise<Float32Array> {
  const decoded = await new OfflineAudioContext(1, 1, SAMPLE_RATE).decodeAudioData(data);
  const frames = Math.max(1, Math.ceil(decoded.duration * SAMPLE_RATE));
  const offline = new OfflineAudioContext(1, frames, SAMPLE_RATE);
  const source = offline.createBufferSource();
  source.buffer = decoded;
  source.connect(offline.destination);
  source.start();
  return (await offline.startRendering()).getChannelData(0);
}
