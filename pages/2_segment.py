"""Segment: thresholds on the grey-value histogram (or brush strokes to train a classifier), a live one-slice
preview, and the full analysis run."""

from dataclasses import replace

import streamlit as st

from core.nn.params import ModelParams
from core.pipeline import AnalysisParams
from core.phases import RESOLVABLE_GAP_SIGMAS, SegmentParams, assess_blur, resolvable_gap_um
from core.phases.forward import AUTO_NOISE
from core.seeding import AUTO_BLUR
from ui import advice, cache, jobs, memory_view, page, phase_map_view, segment_view, state, tables, widgets

page.through_app()  # a first run in Streamlit's pages-folder mode: through app.py (ui.page)

ws, sample = page.sample_page("Segment")
sid = sample.id
page.aligned_note(ws, sample)  # before the read: the way out where an alignment no longer fits the file
ref, vol = page.require_volume(ws, sample)
refusal = None if sample.input.presegmented else cache.greyscale_refusal(ref)
if refusal:  # (QA walk 9: a constant volume, or one with 1 % NaN, gave a traceback here)
    st.error(f"This volume cannot be segmented: {refusal}")
    st.stop()
latest = ws.latest_analysis(sid)
page.fill_note(ws, ref, sample)  # a fill outside the field of view: said, with the crop without it, before a run
page.alignment_note(ws, ref, sample)  # slices shifted against one another (a FIB-SEM stack not aligned)

mparams = ModelParams()
presegmented = sample.input.presegmented
scribbles = None
if presegmented:  # phases read from the file: no method, no thresholds
    method, params = "threshold", None
    phase_map_view.phases_section(sample, ref, vol.shape)
else:
    method = segment_view.method_picker(mparams, ws, sample, latest)
if not presegmented and method == "classifier":
    params = None
    scribbles = segment_view.paint_section(ws, sample, ref, vol.shape)
elif not presegmented:
    # a drift of the grey values along z: said, and flattened on request (then previewed flattened)
    flatten = segment_view.flatten_choice(sample, ref, vol, latest, method)
    gref = cache.flattened_ref(ref) if flatten else ref
    left, right = st.columns([5, 6], gap="large")
    with left:
        if method == "model":  # the network reads the grey values itself: no thresholds to set
            params = None
            segment_view.grey_histogram_section(gref)
        else:
            choice = segment_view.grey_values_section(sample, gref, latest)
            params, run_segment = choice.params, choice.run_params  # the run asks for none where automatic
            if params is not None and flatten:
                params, run_segment = replace(params, flatten=True), replace(run_segment, flatten=True)
    with right:
        segment_view.preview_section(sample, gref, vol.shape, method, params, mparams)

st.divider()
st.subheader("Full analysis")
sep = page.latest_params(latest).separation
if presegmented:
    st.caption("Takes the phases as read, separates the particles "
               f"(h = {sep.h_um:g} µm, merge ratio {sep.merge_ratio:g}; change them on the Particles page) and "
               "measures each particle. The result is stored in the workspace.")
elif method == "classifier":
    st.caption(f"Trains the classifier on the painted voxels ({segment_view.painted_summary(scribbles)}), "
               "classifies every z-slice as the preview does, merges islands of fewer than "
               f"{SegmentParams().min_island} voxels into the phase around them (as the threshold method does; "
               "isolated specks would each count as a particle), separates the particles "
               f"(h = {sep.h_um:g} µm, merge ratio {sep.merge_ratio:g}) and measures each particle. The result and "
               "the training pairs (the painted slices) are stored in the workspace.")
    st.info(segment_view.CLASSIFIER_EDGE_NOTE)
elif method == "model":
    st.caption("Runs the 3D U-Net over the whole volume tile by tile, merges islands of fewer than "
               f"{SegmentParams().min_island} voxels into the phase around them, identifies the particles from its "
               f"instance cue (merge ratio {sep.merge_ratio:g}) and measures each particle. The result is stored in "
               "the workspace.")
else:
    st.caption("Segments the whole volume with these settings, separates the particles "
               f"(h = {sep.h_um:g} µm, merge ratio {sep.merge_ratio:g}; change them on the Particles page) and "
               "measures each particle. The result is stored in the workspace. Where the blur measured on the scan "
               f"is {AUTO_BLUR} voxel or more, the phases are then refined against a model of that blur and the "
               f"noise (where the blur is less but the noise {AUTO_NOISE:g} of the pore-NMC contrast or more, only "
               "the NMC surfaces), so the analysis's phases can differ from this preview: surfaces move by a voxel "
               "or so, and on a strongly blurred scan much of the CBD the thresholds read at the particles' edges "
               "goes: judge the phases of a blurred scan on the analysis's slices (Particles page), not here.")
ap = None
if presegmented:
    ap = AnalysisParams(separation=sep)
elif method == "model":
    ap = AnalysisParams(method="model", particles="model", separation=sep, model=mparams,
                        segment=SegmentParams(flatten=flatten))
elif method == "classifier" and segment_view.enough_painted(scribbles):  # the folder is written on Run
    ap = AnalysisParams(method="classifier", classifier="(the painted slices)", separation=sep)
elif params is not None:
    ap = AnalysisParams(method="threshold", segment=run_segment, separation=sep)
if ap is not None:
    ap = replace(ap, depth_from=segment_view.depth_from_choice(sample, latest, vol.shape))
fits = ap is None or memory_view.memory_note(vol.shape, vol.dtype, ap, presegmented=sample.input.presegmented,
                                             chunked=lambda: jobs.chunked_engine(sample, ap),
                                             workers=jobs.local_workers(), scheduler=jobs.cluster_address())
run = st.button("Run the full analysis", key=state.k(state.SEG_RUN, sid), type="primary",
                disabled=ap is None or not fits)
if run and ap is not None and fits:
    if method == "classifier":  # the training pairs are stored first: the job retrains from them
        ap = replace(ap, classifier=str(ws.save_training(sid, vol, scribbles, segment_view.CLASSIFIER_PARAMS)))
    jobs.announce(jobs.submit(ws, sample, ap))  # a background job: the page may rerun, the browser may close
if method == "classifier" and not presegmented:
    segment_view.classify_others_section(ws, sample, vol, scribbles)

if latest is not None:
    fr = cache.phase_fractions(cache.ResultRef.of(ws, latest))
    seg = latest.resolved.segment
    c = st.columns(5)
    c[0].metric("latest analysis", f"#{latest.id}")
    c[1].metric("particles", latest.n_particles)
    fov = segment_view.field_of_view_words(latest)  # a fill outside the field of view held as no material
    scope = "field of view" if fov else "volume"
    c[2].metric(f"pore ({scope})", f"{fr['pore']:.1%}")
    c[3].metric(f"CBD ({scope})", f"{fr['cbd']:.1%}")
    c[4].metric(f"NMC ({scope})", f"{fr['nmc']:.1%}")
    if fov:
        st.caption(fov)
    if not presegmented:  # (an already-segmented sample's phases are the view above)
        segment_view.analysed_phases_section(ws, sample, latest, method)
    filled = int((latest.provenance or {}).get("nonfinite_filled") or 0)
    if filled:
        st.warning(f"Voxels without a finite grey value (NaN or infinite): {filled}; the analysis gave them the "
                   "median grey value of the finite voxels.")
    if (latest.provenance or {}).get("fill") and cache.fill(ref) is None:  # the sample mended since (a crop)
        from core.phases import fill_message

        st.warning("The latest analysis read a fill outside the field of view: "
                   + fill_message(latest.provenance["fill"]) + " Rerun the analysis to leave it out.")
    if presegmented:
        st.caption(f"Phases read from the file (phase map `{tables.analysed_map(latest) or sample.input.phase_map}`).")
    elif latest.resolved.method == "classifier":
        st.caption("Phases by a classifier trained on brush strokes (training pairs SHA-256 "
                   f"{str(latest.provenance.get('classifier_pairs_sha256'))[:12]}…).")
    elif latest.resolved.method == "model":
        flat = segment_view.flattened_words(latest)
        st.caption(f"Phases by the 3D U-Net{' ' + flat if flat else ''}; particles by "
                   f"{'its instance cue' if latest.resolved.particles == 'model' else 'the watershed'}.")
    else:
        flat = segment_view.flattened_words(latest)
        auto = latest.requested.segment.low is None  # asked for none: the midpoints of the pure phases
        st.caption(f"Thresholds used: {tables.grey_text(seg.low)} / {tables.grey_text(seg.high)} grey"
                   f"{' (automatic)' if auto else ''}"
                   f"{' ' + flat + '; ' if flat else '; '}denoise {seg.denoise}"
                   f"{'' if seg.denoise == 'none' else ' (' + str(seg.denoise_size) + ')'}; "
                   "partial-volume blur σ = "
                   f"{'–' if seg.pv_sigma is None else format(seg.pv_sigma, '.3g')} voxels.")
        refined = (latest.provenance or {}).get("phase_refinement")
        unread = advice.refine_reading(latest.provenance)
        if unread:
            st.caption(unread)
        if refined:
            subject = advice.refined_subject(refined)
            st.caption(f"{subject[0].upper() + subject[1:]} were then refined against a model of the scan's blur "
                       f"(σ = {refined['blur']:.2f} voxel) and noise: {sum(refined['changes']):,} voxel changes.")
        if seg.partial_volume and seg.pv_sigma:
            # the wider of the two blur readings: the refinement's model of the scan read 1.49 voxel where the
            # partial-volume fit read 0.62, and the blur warning stayed silent (QA walk 9, a blur of 1.5)
            sigma = max(float(seg.pv_sigma), float(refined["blur"]) if refined and refined.get("blur") else 0.0)
            gap = resolvable_gap_um(sigma, sample.spacing)
            st.caption(f"At this blur, gaps between a particle and its CBD narrower than about {gap:.2f} µm "
                       f"({RESOLVABLE_GAP_SIGMAS:g} σ) read increasingly as contact, so detachment comes out too "
                       "low where the gaps are that thin (measured on synthetic electrodes; see the README).")
            blur = assess_blur(sigma, sample.downsample, origin=latest.pv_sigma_origin or "fitted")
            radius = advice.median_radius_voxels(cache.table(cache.ResultRef.of(ws, latest)), sample.spacing)
            too_blurred = advice.blur_warning(blur, radius)
            if too_blurred:
                st.warning(too_blurred)
                if advice.advises_downsampling(blur, radius):
                    widgets.downsampled_copy_button(ws, sample, vol.shape, blur.factor)
else:
    pending = jobs.active_analysis(ws, sid)  # (QA walk 11: "Not analysed yet." while its job ran)
    st.info("Not analysed yet." if pending is None else
            f"Not analysed yet: job #{pending.id} is analysing it ({pending.state}; its progress is in the sidebar).")
failed = ws.latest_analysis(sid, status=None)
if failed is not None and failed.status == "failed":
    # (QA: "#N" read as the sidebar's job numbers; a Cancel read as a failure)
    if (failed.error or "").startswith("Cancelled on request"):
        st.info(f"The last analysis (analysis {failed.id}) was cancelled on request before it finished.")
    else:
        st.warning(f"The last analysis (analysis {failed.id}) failed: {failed.error}")
