console.log("APP-JS-IDENTITY");
