/**
 * An attached or listed file: an image shows as a preview, anything else as
 * a card; downloads and previews go through short-lived signed links (an <img>
 * cannot send a bearer token). Text-like files offer "Analyze" by the AI.
 */
import { useSignal } from '@preact/signals';
import { useEffect, useRef } from 'preact/hooks';
import { describe } from '../../api/errors';
import { bytes } from '../../lib/format';
import type { FileRef } from '../../realtime/protocol';
import type { JobSeen, RoomSession } from '../../realtime/room';
import { analyzable, analyze, link, loadAnalysis } from '../../state/files';
import { fail } from '../../state/toasts';
import { Icon } from '../ui/Icon';
import { Download, FileIcon, Sparkles } from '../icons';

const isImage = (t: string | null) => /^image\/(png|jpeg|gif|webp|avif)$/.test(t ?? '');

/** A file as a message attaches it or the files list shows it (whose type may be unknown until it is finished). */
type Shown = Omit<FileRef, 'content_type'> & { content_type: string | null };

export function Attachment({ f, s, job, mayAnalyze }: { f: Shown; s: RoomSession; job: JobSeen | undefined; mayAnalyze: boolean }) {
  const readable = analyzable(f.content_type, f.name);
  useEffect(() => { if (readable && !job) loadAnalysis(s, f.id); }, [f.id, readable]);
  return (
    <div class="file">
      {isImage(f.content_type) ? <Preview f={f} /> : null}
      <div class="file-card">
        <Icon node={FileIcon} />
        <span class="file-name">{f.name}</span>
        <span class="muted small">{bytes(f.size)}</span>
        <DownloadButton f={f} />
        {mayAnalyze && readable && (
          <button type="button" class="btn small" disabled={!!job && job.status !== 'done' && job.status !== 'failed'} aria-label={`Analyze ${f.name}`}
            onClick={() => analyze(s, f.id).catch(fail)}>
            <Icon node={Sparkles} size={14} /> Analyze
          </button>
        )}
      </div>
      {job && <JobView job={job} name={f.name} />}
    </div>
  );
}

function Preview({ f }: { f: Shown }) {
  const src = useSignal<string | null>(null);
  const error = useSignal<string | null>(null);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    // The link is asked for only when the image scrolls into view.
    const io = new IntersectionObserver((entries) => {
      if (!entries.some((e) => e.isIntersecting)) return;
      io.disconnect();
      link(f.id).then((url) => { src.value = url; }).catch((e) => { error.value = describe(e); });
    });
    io.observe(ref.current!);
    return () => io.disconnect();
  }, [f.id]);
  return (
    <div ref={ref} class="preview">
      {src.value ? <img src={src.value} alt={f.name} loading="lazy" decoding="async" />
        : error.value ? <p class="muted small">Preview unavailable: {error.value}</p>
        : <span class="muted small" role="status">Loading preview…</span>}
    </div>
  );
}

function DownloadButton({ f }: { f: Shown }) {
  const go = async () => {
    try {
      const a = document.createElement('a');
      a.href = await link(f.id, true);
      a.download = f.name;
      a.rel = 'noopener';
      document.body.append(a);
      a.click();
      a.remove();
    } catch (e) {
      fail(e);
    }
  };
  return <button type="button" class="icon-btn" aria-label={`Download ${f.name}`} onClick={go}><Icon node={Download} size={16} /></button>;
}

function JobView({ job, name }: { job: JobSeen; name: string }) {
  if (job.status === 'failed') return <p class="error small" role="alert">The analysis of {name} failed{job.error ? `: ${job.error}` : '.'}</p>;
  if (job.status !== 'done') {
    return (
      <div class="job">
        <span class="small">Analyzing…</span>
        <progress max={100} value={job.progress} aria-label={`Analysis of ${name}`}>{job.progress} %</progress>
      </div>
    );
  }
  return (
    <section class="summary" aria-label={`Summary of ${name}`}>
      <p>{job.result?.summary}</p>
      {!!job.result?.key_points?.length && <ul>{job.result.key_points.map((k, i) => <li key={i}>{k}</li>)}</ul>}
    </section>
  );
}
