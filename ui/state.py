"""Every session-state and widget key of the dashboard, in one place.

Widgets shared across pages live in ``app.py`` (a widget's key is dropped when
a page that does not render it runs); values that must survive a page switch
are copied to plain keys (no widget owns them).  Per-sample widget keys carry
the sample id (:func:`k`) so that switching samples starts from that sample's
own values.
"""

from __future__ import annotations

# ---- plain keys (no widget owns them)
SAMPLE_ID = "sample_id"                # id of the current sample (copied from the sidebar picker)
PENDING_SAMPLE = "pending_sample"      # id the picker should switch to on the next run
STARTUP_DONE = "startup_done"          # the first-run demo check ran in this session
FLASH = "flash"                        # one-shot message shown after a rerun: (kind, text)
BROWSE_DIR = "browse_dir"              # current folder of the server-side file browser
UPLOADS_SAVED = "uploads_saved"        # {uploaded file id: path in the workspace}, so a rerun does not save twice

# ---- app.py (shared sidebar)
SAMPLE_PICKER = "w_sample_picker"

# ---- Samples page
ADD_SOURCE = "w_add_source"
ADD_DEMO = "w_add_demo"
ADD_DEMO_SIZE = "w_add_demo_size"
ADD_FILE = "w_add_file"
ADD_UPLOAD = "w_add_upload"
ADD_NAME = "w_add_name"
ADD_GROUP = "w_add_group"
ADD_SPACING = "w_add_spacing"          # + "_z" / "_y" / "_x"
ADD_AXIS = "w_add_axis"
ADD_SIDE = "w_add_side"
ADD_SUBMIT = "w_add_submit"
ADD_DOWNSAMPLE = "w_add_downsample"    # + source kind and token
DOWNSAMPLED_COPY = "w_downsampled_copy"  # + sample id: the Segment page's "add a downsampled copy" button
BROWSE_OPEN = "w_browse_open"
BROWSE_UP = "w_browse_up"
EDIT_NAME = "w_edit_name"
EDIT_GROUP = "w_edit_group"
EDIT_SPACING = "w_edit_spacing"        # + "_z" / "_y" / "_x"
EDIT_AXIS = "w_edit_axis"
EDIT_SIDE = "w_edit_side"
EDIT_SAVE = "w_edit_save"
VIEW_INDEX = "w_view_index"            # + "_z" / "_y" / "_x"
VIEW_CONTRAST = "w_view_contrast"
DELETE_CONFIRM = "w_delete_confirm"
DELETE_BUTTON = "w_delete_button"

# ---- Segment page
SEG_METHOD = "w_seg_method"
PART_METHOD = "w_part_method"
SEG_LOW = "w_seg_low"
SEG_HIGH = "w_seg_high"
SEG_SUGGEST = "w_seg_suggest"
SEG_ALTERNATIVE = "w_seg_alternative"     # + sample id: "Use the NMC-first reading" button
SEG_DENOISE = "w_seg_denoise"
SEG_DENOISE_SIZE = "w_seg_denoise_size"
SEG_PV = "w_seg_pv"
SEG_MIN_ISLAND = "w_seg_min_island"
SEG_AXIS = "w_seg_axis"
SEG_INDEX = "w_seg_index"
SEG_OPACITY = "w_seg_opacity"
SEG_RUN = "w_seg_run"

# ---- Particles page
PART_FORM = "w_part_form"
PART_MARKERS = "w_part_markers"
PART_H = "w_part_h"
PART_MIN_DIST = "w_part_min_dist"
PART_MERGE = "w_part_merge"
PART_MIN_VOL = "w_part_min_vol"
PART_FILL = "w_part_fill"
PART_RUN = "w_part_run"
PART_TABLE = "w_part_table"
PART_SELECT = "w_part_select"
PART_AXIS = "w_part_axis"
PART_INDEX = "w_part_index"

# ---- Compare page
CMP_SAMPLES = "w_cmp_samples"
CMP_EDGE = "w_cmp_edge"                # edge policy: exclude / include / miles
CMP_MIN_DIAMETER = "w_cmp_min_diameter"    # smallest equivalent diameter counted (µm)
CMP_CUT = "w_cmp_cut"                  # detachment cut of the "share detached" column
CMP_METRIC = "w_cmp_metric"
CMP_WEIGHTING = "w_cmp_weighting"      # number / volume
CMP_KIND = "w_cmp_kind"                # histogram / ecdf / box / violin
CMP_FACET = "w_cmp_facet"              # small multiples (one panel per electrode)
CMP_TREND_BINS = "w_cmp_trend_bins"
CMP_TREND_LOW_N = "w_cmp_trend_low_n"
CMP_TREND_POINTS = "w_cmp_trend_points"
CMP_DEPTH = "w_cmp_depth"

# ---- Export sections (ui/exports.py; specialised by page with k(..., "compare") / k(..., "particles"))
EXP_TABLE_CSV = "w_exp_table_csv"
EXP_TABLE_PARQUET = "w_exp_table_parquet"
EXP_CHART = "w_exp_chart"              # + chart index + "png" / "svg"
EXP_REPORT = "w_exp_report"
EXP_RECIPE = "w_exp_recipe"

# ---- 3D page
V3_DEPTH = "w_v3_depth"
V3_MAX_TRI = "w_v3_max_tri"
V3_MODE = "w_v3_mode"
V3_CBD = "w_v3_cbd"
V3_CBD_OPACITY = "w_v3_cbd_opacity"

# ---- Compare-page sections of ui/sections.py (isolated particles, segmentation uncertainty)
ISO_TABLE = "w_iso_table"
UNC_RUN = "w_unc_run"
UNC_TABLE = "w_unc_table"


def k(base: str, *parts) -> str:
    """A key specialised by sample id (or axis, ...): ``k(SEG_LOW, 3) == "w_seg_low_3"``."""
    return "_".join([base, *(str(p) for p in parts)])

# charts drawn on the current page run, offered by its Export section (ui.exports.show)
EXP_SHOWN = "exp_shown_charts"
