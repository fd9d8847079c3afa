//! The order processor the workers run: parse, and hand the order back as the effect the
//! writer stores in the same transaction as `processed`.

use std::sync::Arc;

use super::{OrderParser, ParseError};
use crate::base::error::{Error, Result};
use crate::settings::Settings;
use crate::store::Effect;
use crate::work::queue::{Job, ProcessError, Processor};

pub struct OrderProcessor {
    parser: OrderParser,
}

impl OrderProcessor {
    pub fn new(settings: &Settings) -> Result<OrderProcessor> {
        let parser = OrderParser::new(
            &settings.orders.aliases,
            settings.orders.default_currency.as_deref(),
        )
        .map_err(Error::Config)?;
        Ok(OrderProcessor { parser })
    }

    pub fn parser(&self) -> &OrderParser {
        &self.parser
    }
}

impl Processor for OrderProcessor {
    fn process(&self, job: &Job) -> std::result::Result<Effect, ProcessError> {
        match self.parser.parse(&job.payload) {
            Ok(order) => Ok(Effect::Order(Box::new(order))),
            // Every parse error is a fact about the body: retrying cannot change it.
            Err(
                e @ (ParseError::InvalidJson(_)
                | ParseError::NoOrderNumber(_)
                | ParseError::OrderNumberTooLong(_)),
            ) => Err(ProcessError::Permanent(e.to_string())),
        }
    }
}

/// The processor `serve` runs.
pub fn processor_for(settings: &Settings) -> Result<Arc<dyn Processor>> {
    Ok(Arc::new(OrderProcessor::new(settings)?))
}
