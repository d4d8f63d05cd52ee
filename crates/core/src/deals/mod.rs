//! Pipelines and deals: a tenant's sales, each deal with a contact in a stage of a pipeline.
//!
//! Users and API keys read pipelines and deals (`deals.read`), create, edit and move deals
//! (`deals.write`: admins and agents), create pipelines and change their stages
//! (`pipelines.manage`: admins; a key needs `deals:write`) and delete deals and pipelines
//! (`deals.delete`: admins). Every tenant has at least one pipeline: a new tenant gets the
//! default one when it registers, and a tenant older than pipelines gets it on its first
//! read of the pipelines; the last pipeline cannot be deleted.
//!
//! Moving a deal records a stage change (from, to, who, when) in the transaction of the move,
//! after locking the deal's row, so concurrent moves are all recorded, each from the stage the
//! previous one left. Events: `deal.created`, `deal.updated` (fields other than the stage),
//! `deal.stage_changed` (with `deal.won` / `deal.lost` when the new stage is won / lost) and
//! `deal.deleted`. The audit log keeps ids, stages and amounts, never titles or reasons.

pub mod board;
pub mod deal;
pub mod pipelines;
pub mod view;

pub use board::{board, Board, BoardColumn};
pub use deal::{create, delete, get, history, list, update, DealListQuery, DealPatch, NewDeal};
pub use pipelines::{
    create_default, create_pipeline, delete_pipeline, get_pipeline, list_pipelines,
    update_pipeline, NewPipeline, PipelinePatch, StageInput,
};
pub use view::{DealStageChangeView, DealView, PipelineView, StageView};
