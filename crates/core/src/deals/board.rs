//! The board: one pipeline's stages as columns, each with how many deals it holds, what they
//! are worth per currency, and its newest deals as cards. Read in one transaction (three
//! statements: the pipeline, the totals, the cards), whatever the number of deals.

use crate::auth::Principal;
use crate::{AppError, AppResult, Services};
use palisade_domain::{Permission, Pipeline, PipelineId, Stage};
use palisade_store::deals::{self as store, BoardDeal};

/// At most this many cards per column (the newest); the column's count and totals cover all.
pub const MAX_CARDS_PER_STAGE: i64 = 100;

#[derive(Debug, Clone)]
pub struct Board {
    pub pipeline: Pipeline,
    /// One per stage, in the pipeline's order.
    pub columns: Vec<BoardColumn>,
}

#[derive(Debug, Clone)]
pub struct BoardColumn {
    pub stage: Stage,
    /// Every deal in the stage.
    pub count: i64,
    /// The sum of the stage's deals per currency (minor units), by currency code.
    pub totals: Vec<(String, i128)>,
    /// The newest deals (at most the number asked for), newest first.
    pub deals: Vec<BoardDeal>,
}

impl BoardColumn {
    /// Deals in the stage that are not among its cards.
    pub fn more(&self) -> i64 {
        (self.count - self.deals.len() as i64).max(0)
    }
}

/// The board of `pipeline` with at most `per_stage` cards a column (1 to
/// [`MAX_CARDS_PER_STAGE`]). Members read it (`deals.read`); another tenant's pipeline is `404`.
pub async fn board(
    s: &Services,
    p: &Principal,
    pipeline: PipelineId,
    per_stage: i64,
) -> AppResult<Board> {
    p.require(Permission::DealsRead)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    let pipeline = store::find_pipeline(&mut tx, pipeline)
        .await?
        .ok_or(AppError::NotFound("pipeline"))?;
    let totals = store::stage_totals(&mut tx, pipeline.id).await?;
    let mut deals = store::board_deals(
        &mut tx,
        pipeline.id,
        per_stage.clamp(1, MAX_CARDS_PER_STAGE),
    )
    .await?;
    let columns = pipeline
        .stages
        .iter()
        .map(|stage| {
            let mine: Vec<_> = totals.iter().filter(|t| t.stage_id == stage.id).collect();
            BoardColumn {
                stage: stage.clone(),
                count: mine.iter().map(|t| t.count).sum(),
                totals: mine
                    .iter()
                    .map(|t| (t.currency.clone(), t.value_minor))
                    .collect(),
                deals: Vec::new(),
            }
        })
        .collect::<Vec<_>>();
    let mut board = Board { pipeline, columns };
    // Cards arrive newest first; each goes to its stage's column, keeping that order.
    for d in deals.drain(..) {
        if let Some(c) = board
            .columns
            .iter_mut()
            .find(|c| c.stage.id == d.deal.stage_id)
        {
            c.deals.push(d);
        }
    }
    Ok(board)
}
